"""Errors a user can act on, and the exit codes the commands use for them."""

from __future__ import annotations

#: Bad configuration or command-line input: nothing ran, nothing was created.
EXIT_CONFIG = 2
#: The study could not be reached or used (storage down, study missing, ...).
EXIT_STORAGE = 3


class StudyError(Exception):
    """A problem the user can fix; its message is one line naming the setting and the fix."""

    exit_code = EXIT_STORAGE


class ConfigError(StudyError):
    """A setting is unknown, of the wrong type or out of range."""

    exit_code = EXIT_CONFIG


class StorageError(StudyError):
    """The study's database cannot be reached or used."""

    exit_code = EXIT_STORAGE


class DataError(ConfigError):
    """A dataset cannot be used: a missing file or column, too few examples, bad values."""
