"""The browser page in a real browser: headless Chromium with a fake microphone that plays a WAV file opens `/`,
presses Start, and sees committed text appear; Stop offers the session's subtitles for download.

Needs Debian's `chromium` and the `playwright` package (it drives the system browser; no browser download):
    apt-get install chromium && pip install playwright
SIMULSA_SCREENSHOT=path.png keeps a screenshot of the page (docs/serve.md's was made so, with the default model).
"""

from __future__ import annotations

import os
import shutil

import pytest

pytest.importorskip("starlette", reason="the [serve] extra is not installed (pip install -e '.[serve]')")
playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (apt-get install chromium)")

from simulsa.runtime.audio import write_wav  # noqa: E402
from simulsa.runtime.session import Translator  # noqa: E402
from tests.runtime.test_server import running  # noqa: E402


def test_the_page_shows_committed_text_from_the_microphone_and_the_overlay_shows_it_too(tiny_bundles, speech_like, tmp_path):
    wav = tmp_path / "speech.wav"
    write_wav(wav, speech_like)
    translator = Translator.from_bundle(tiny_bundles["whisper-tokens", "none"])
    flags = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
             f"--use-file-for-fake-audio-capture={wav}", "--autoplay-policy=no-user-gesture-required"]  # fmt: skip
    with running(translator) as (_, http, _), playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, headless=True, args=flags)
        try:
            captions = browser.new_page()  # the OBS overlay, open before the stream starts
            captions.goto(http + "/captions")
            page = browser.new_page()
            console = []
            page.on("console", lambda message: console.append(message.text))
            page.goto(http + "/")
            page.select_option("#chunk_ms", "500")
            page.click("#start")
            page.wait_for_function("document.querySelector('#transcript .committed')?.textContent.trim().length > 0",
                                   timeout=30_000)  # fmt: skip
            assert "listening" in page.inner_text("#status")
            captions.wait_for_function("document.querySelector('#captions').textContent.trim().length > 0", timeout=30_000)
            if os.environ.get("SIMULSA_SCREENSHOT"):
                page.screenshot(path=os.environ["SIMULSA_SCREENSHOT"])
            page.click("#stop")
            page.wait_for_selector("#srt[aria-disabled='false']", timeout=30_000)
            assert page.get_attribute("#srt", "href").startswith("blob:") and "done" in page.inner_text("#status")
            assert not [line for line in console if "error" in line.lower()], console
        finally:
            browser.close()
