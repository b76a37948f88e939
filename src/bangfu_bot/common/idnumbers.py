"""Resident ID numbers (GB 11643): the check character, and hiding them for logs."""

from __future__ import annotations

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK_CHARACTERS = "10X98765432"


def check_character(first17: str) -> str:
    """The 18th character that the first 17 digits call for."""
    return CHECK_CHARACTERS[sum(int(d) * w for d, w in zip(first17, WEIGHTS, strict=True)) % 11]


def with_check(first17: str) -> str:
    """The first 17 digits completed with their check character."""
    return first17 + check_character(first17)
