"""Kinds of fund movement."""

from __future__ import annotations

from enum import StrEnum


class Movement(StrEnum):
    """Kinds of fund movement (资金变动)."""

    CONTRIBUTION = "contribution"  # 筹集: finance, committees, party dues, donations, welfare
    RELIEF = "relief"  # 慰问金 paid in visits (from the fund's earnings)
    LOAN_OUT = "loan_out"  # 借款发放
    PRINCIPAL_IN = "principal_in"  # 还本
    INTEREST_IN = "interest_in"  # 利息收入
    WRITE_OFF = "write_off"  # 核销 (principal that will not come back; no cash moves)
