"""Every domain's side of the chat, gathered into the registry the router reads.

An edge module, like `jobs.py`: the router (in `conversation`) knows no domain, and each
domain's `chat.py` declares its words, to-dos, actions and previews. Here each is bound to
what only that domain needs, read once from the settings.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from bangfu_bot.accounts import chat as accounts
from bangfu_bot.broadcasts import chat as broadcasts
from bangfu_bot.cases import chat as cases
from bangfu_bot.cases.eligibility import load_rules
from bangfu_bot.cases.procedure import Rules as ProcedureRules
from bangfu_bot.conversation.registry import Registry
from bangfu_bot.conversation.router import ChatBot
from bangfu_bot.ledger import chat as ledger
from bangfu_bot.loans import chat as loans
from bangfu_bot.loans.service import Terms
from bangfu_bot.outcomes import chat as outcomes
from bangfu_bot.reports import chat as reports
from bangfu_bot.settings import Settings
from bangfu_bot.visits import chat as visits


def registry(settings: Settings) -> Registry:
    """Every domain's chat under the county's settings."""
    return Registry.of(
        [
            accounts.CHAT,
            cases.chat(
                rules=ProcedureRules.from_settings(settings),
                eligibility=load_rules(Path(settings.conversations_dir) / "eligibility.toml"),
            ),
            ledger.CHAT,
            loans.chat(terms=Terms.from_settings(settings)),
            visits.chat(),
            broadcasts.CHAT,
            reports.CHAT,
            reports.details_chat(
                eligibility=load_rules(Path(settings.conversations_dir) / "eligibility.toml")
            ),
            outcomes.CHAT,
        ]
    )


def chat_bot(settings: Settings) -> ChatBot:
    """The chat bot with the flows in the settings' conversations directory; raises
    FlowsInvalid if a dialogue file is wrong."""
    return ChatBot.from_directory(
        settings.conversations_dir,
        registry=registry(settings),
        tz=settings.tz,
        expiry=timedelta(hours=settings.flow_expiry_h),
    )
