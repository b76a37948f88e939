"""Loads message texts kept in TOML files next to their domain."""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import resources


@cache
def texts(package: str, name: str = "messages.toml") -> dict[str, str]:
    """The texts of one domain, by key."""
    data = resources.files(package).joinpath(name).read_text(encoding="utf-8")
    return {key: value for key, value in tomllib.loads(data).items() if isinstance(value, str)}
