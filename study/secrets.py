"""Passwords in URLs: hidden when printed, moved off command lines.

Command lines are public on a machine (``ps``, ``/proc/*/cmdline``) and end up in job files; a
password a user gives inside a URL (``storage.url``, ``tracking.mlflow_uri``) is shown as ``***``
and reaches another process through its environment instead.
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit, urlunsplit


def _split(uri: str) -> tuple[str, str | None]:
    """``uri`` without its password, and the password (None when there is none)."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return uri, None
    userinfo, at, host = parts.netloc.rpartition("@")
    user, colon, password = userinfo.partition(":")
    if not (at and colon and password):
        return uri, None
    bare = (parts.scheme, f"{user}@{host}", parts.path, parts.query, parts.fragment)
    return urlunsplit(bare), unquote(password)


def hide_password(uri: str) -> str:
    """``uri`` as it may be printed or logged."""
    bare, password = _split(uri)
    if password is None:
        return uri
    scheme, _, rest = bare.partition("://")
    user, _, host = rest.partition("@")
    return f"{scheme}://{user}:***@{host}"


def without_password(overrides: list[str], password_env: str) -> tuple[list[str], dict[str, str]]:
    """``overrides`` for another process's command line: a password in ``storage.url`` moves to
    the environment variable the storage reads it from. Returns the overrides and the
    variables to add to the other process's environment."""
    clean, env = [], {}
    for override in overrides:
        key, _, value = override.partition("=")
        if key.lstrip("+") == "storage.url":
            quote = value[0] if len(value) > 1 and value[0] == value[-1] in "'\"" else ""
            bare, password = _split(value[1:-1] if quote else value)
            if password is not None:
                env[password_env] = password
                override = f"{key}={quote}{bare}{quote}"
        clean.append(override)
    return clean, env


def has_password(overrides: list[str]) -> bool:
    """Whether a ``storage.url`` among ``overrides`` carries a password."""
    return bool(without_password(overrides, "_")[1])
