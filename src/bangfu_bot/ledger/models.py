"""One ledger entry per member per year; exits are recorded, never deleted.

The table is defined with the cases (filing a case opens its first entry, and the ledger
stands above the cases); it is named here for the ledger's own code.
"""

from bangfu_bot.cases.models import ledger_entries

__all__ = ["ledger_entries"]
