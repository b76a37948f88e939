"""Case statuses (one enum; the transition table arrives with the procedure, issue 4)."""

from enum import StrEnum


class CaseStatus(StrEnum):
    """Where a case stands, from application to the ledger."""

    SUBMITTED = "submitted"
    UNDER_EVALUATION = "under_evaluation"
    EVALUATED_PASSED = "evaluated_passed"
    EVALUATED_FAILED = "evaluated_failed"
    ON_NOTICE = "on_notice"
    NOTICE_CLOSED = "notice_closed"
    REPORTED = "reported"
    APPROVED = "approved"
    RETURNED = "returned"
    FILED = "filed"
    IN_LEDGER = "in_ledger"
    EXITED = "exited"
