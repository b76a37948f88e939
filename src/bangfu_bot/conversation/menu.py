"""The custom menu in conversations/menu.toml, checked and turned into WeChat's JSON."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

MAX_BUTTONS = 3
MAX_SUBS = 5
# The platform counts bytes: 16 for a top-level name (4 Chinese), 60 for a sub-button.
MAX_TOP_BYTES = 16
MAX_SUB_BYTES = 60


class MenuInvalid(ValueError):
    """The menu breaks a platform rule; the message names the button."""


def menu_json(path: Path, words: dict[str, str]) -> dict[str, Any]:
    """The menu as /cgi-bin/menu/create expects it; raise MenuInvalid on a broken rule."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    buttons = data.get("button", [])
    if not 1 <= len(buttons) <= MAX_BUTTONS:
        raise MenuInvalid(f"{path}: {len(buttons)} buttons; the platform allows 1 to 3")
    return {"button": [_button(path, raw, words, top=True) for raw in buttons]}


def _button(path: Path, raw: dict[str, Any], words: dict[str, str], *, top: bool) -> dict[str, Any]:
    name = str(raw.get("name", ""))
    limit = MAX_TOP_BYTES if top else MAX_SUB_BYTES
    if not name or len(name.encode("utf-8")) > limit:
        raise MenuInvalid(f"{path}: button {name!r} must have a name of at most {limit} bytes")
    subs = raw.get("sub", [])
    if subs:
        if not top:
            raise MenuInvalid(f"{path}: button {name!r}: sub-buttons cannot have sub-buttons")
        if len(subs) > MAX_SUBS:
            raise MenuInvalid(f"{path}: button {name!r} has {len(subs)} sub-buttons; at most 5")
        return {"name": name, "sub_button": [_button(path, sub, words, top=False) for sub in subs]}
    key, word = str(raw.get("key", "")), str(raw.get("word", ""))
    if not key or word not in words:
        raise MenuInvalid(f"{path}: button {name!r} needs a key and a word from commands.toml")
    return {"type": "click", "name": name, "key": key}
