"""External programs (GPL tools among them) are run as programs, never imported; checked for at start."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from simulsa.runtime.errors import SimulsaError

# program -> how to get it
INSTALL_HINTS = {
    "apertium": "install the Debian packages apertium and apertium-eng-spa (apt-get install apertium apertium-eng-spa)",
    "flite": "install the Debian package flite (apt-get install flite)",
    "espeak-ng": "install the Debian package espeak-ng (apt-get install espeak-ng)",
    "piper": "pip install piper-tts (GPL; simulsa runs it as a program) and give a voice model path",
}


class MissingProgramError(SimulsaError):
    """A data-generation program that is not installed."""


def require(program: str) -> str:
    path = shutil.which(program)
    if path is None:
        raise MissingProgramError(f"{program} not found: {INSTALL_HINTS.get(program, 'install it and put it on PATH')}")
    return path


def run(command: list[str], text_input: str | None = None, timeout: float = 120) -> str:
    """Run a program; a failure names the program and its last error line."""
    try:
        result = subprocess.run(command, input=text_input, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise SimulsaError(f"{command[0]} took longer than {timeout} s") from None
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no message"])[-1]
        raise SimulsaError(f"{command[0]} failed (exit {result.returncode}): {last}")
    return result.stdout


def _installed(package: str) -> bool:
    result = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True)
    return result.returncode == 0 and result.stdout.endswith("installed")


def debian_package_root(package: str, scratch: Path) -> Path:
    """The folder a Debian package's paths are relative to: / where it is installed, else `apt-get download` +
    `dpkg -x` into scratch."""
    if shutil.which("dpkg-query") and _installed(package):
        return Path("/")
    require("apt-get")
    unpacked = scratch / package
    if not unpacked.is_dir():
        result = subprocess.run(["apt-get", "download", package], cwd=scratch, capture_output=True, text=True)
        debs = sorted(scratch.glob(f"{package}_*.deb"))
        if result.returncode != 0 or not debs:
            raise SimulsaError(f"could not get the Debian package {package} (apt-get install {package}, "
                               "or leave this set out)")  # fmt: skip
        subprocess.run(["dpkg", "-x", str(debs[0]), str(unpacked)], check=True, capture_output=True)
    return unpacked
