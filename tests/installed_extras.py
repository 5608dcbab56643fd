"""Which installed packages an install of simulsa with only some extras would not have (to block them in a subprocess)."""

from __future__ import annotations

import importlib.metadata as metadata
import re
import sys

from packaging.requirements import Requirement


def _name(dist: str) -> str:
    return re.sub(r"[-_.]+", "-", dist).lower()


def _requires(dist: str, extras: tuple[str, ...] = ("",)) -> list[str]:
    """The distributions `dist` needs on this platform with the given extras ("": none), as its metadata says."""
    try:
        requirements = [Requirement(r) for r in metadata.requires(dist) or []]
    except metadata.PackageNotFoundError:
        return []
    return [r.name for r in requirements if r.marker is None or any(r.marker.evaluate({"extra": e}) for e in extras)]


def distributions_of(extras: tuple[str, ...]) -> set[str]:
    """simulsa's base dependencies and the named extras (as installed: `pip install -e` again after editing
    pyproject.toml), with everything they need in turn (normalized names)."""
    todo, seen = _requires("simulsa", ("", *extras)), {"simulsa"}
    while todo:
        dist = _name(todo.pop())
        if dist not in seen:
            seen.add(dist)
            todo += _requires(dist)
    return seen


def modules_outside(extras: tuple[str, ...]) -> tuple[str, ...]:
    """Top-level modules installed here that an install with only `extras` would lack (the standard library kept)."""
    allowed = distributions_of(extras)
    outside = {module for module, dists in metadata.packages_distributions().items()
               if not any(_name(d) in allowed for d in dists)}  # fmt: skip
    return tuple(sorted(outside - set(sys.stdlib_module_names) - {"sitecustomize"}))
