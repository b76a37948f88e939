"""Where a loan stands."""

from __future__ import annotations

from enum import StrEnum


class LoanStatus(StrEnum):
    """Where a loan stands."""

    APPLIED = "applied"
    APPROVED = "approved"
    REJECTED = "rejected"
    INSPECTED = "inspected"
    GUARANTEED = "guaranteed"
    RECORDED = "recorded"
    DISBURSED = "disbursed"
    REPAID = "repaid"
    WRITTEN_OFF = "written_off"


L = LoanStatus
# A loan still under way (not rejected, repaid or written off).
OPEN = (L.APPLIED, L.APPROVED, L.INSPECTED, L.GUARANTEED, L.RECORDED, L.DISBURSED)
