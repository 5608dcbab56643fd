"""Errors that reach the user as one line.

Library code raises these at the boundary where the bad value is known; the CLI
prints `error: <message>` and exits 1. Each message names the bad value and what
to do about it.
"""


class SimulsaError(Exception):
    """Base class of every error simulsa reports to a user."""


class AudioError(SimulsaError):
    """Audio that is missing, unreadable, empty or not finite."""


class ManifestError(SimulsaError):
    """A manifest that is not JSONL or has an invalid row."""


class ModelError(SimulsaError):
    """A folder that is not a simulsa model, or an unknown family."""


class OutputExistsError(SimulsaError):
    """An output path that already exists and --force was not given."""


class OutputPathError(SimulsaError):
    """An output path that is a folder where a file is wanted, or a place that cannot be written."""
