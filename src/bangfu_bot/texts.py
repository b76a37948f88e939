"""Loads message texts kept in TOML files next to their domain."""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from functools import cache
from importlib import resources


@cache
def texts(package: str, name: str = "messages.toml") -> dict[str, str]:
    """The texts of one domain, by key."""
    data = resources.files(package).joinpath(name).read_text(encoding="utf-8")
    return {key: value for key, value in tomllib.loads(data).items() if isinstance(value, str)}


def speaker(package: str) -> Callable[..., str]:
    """A domain's `say(key, **values)`: its text with {placeholders} filled in."""

    def say(key: str, **values: object) -> str:
        text = texts(package)[key]
        return text.format(**values) if values else text

    say.__doc__ = f"A text of {package}, with {{placeholders}} filled in."
    return say
