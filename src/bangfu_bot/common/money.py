"""Money is integer fen everywhere; this is how people read it."""

from __future__ import annotations


def yuan(fen: int) -> str:
    """Integer fen as yuan for people: 350000 → 3500元, 350050 → 3500.50元."""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}{whole}元" if cents == 0 else f"{sign}{whole}.{cents:02d}元"
