"""Money is integer fen everywhere; this is how people read it."""

from __future__ import annotations

from bangfu_bot.texts import texts

# Read once: `yuan` runs for every amount in every message and workbook.
_YUAN = texts("bangfu_bot.common")["yuan"]


def yuan(fen: int) -> str:
    """Integer fen as yuan for people: 350000 → 3500元, 350050 → 3500.50元."""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return _YUAN.format(amount=f"{sign}{whole}" if cents == 0 else f"{sign}{whole}.{cents:02d}")


def yuan_read(fen: int) -> str:
    """Yuan as people read a sum, thousands marked: 217400 → 2,174元, 217452 → 2,174.52元."""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    amount = f"{sign}{whole:,}" if cents == 0 else f"{sign}{whole:,}.{cents:02d}"
    return _YUAN.format(amount=amount)
