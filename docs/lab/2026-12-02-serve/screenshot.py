"""The browser page of a running `simulsa serve`, in headless Chromium with a fake microphone playing WAV, as a PNG
(scratch, 2026-12-02). usage: screenshot.py URL WAV SECONDS OUT.png"""
import sys, time
from playwright.sync_api import sync_playwright

url, wav, seconds, out = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
flags = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream", f"--use-file-for-fake-audio-capture={wav}"]
with sync_playwright() as driver:
    browser = driver.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=flags)
    page = browser.new_page(viewport={"width": 1000, "height": 560})
    page.goto(url)
    page.select_option("#chunk_ms", "1000")
    page.click("#start")
    time.sleep(seconds)
    page.screenshot(path=out)
    print(page.inner_text("#transcript"))
    browser.close()
