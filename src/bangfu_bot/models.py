"""Imports every domain's tables so the shared MetaData (and Alembic) sees them all."""

from bangfu_bot import clock_models, scheduler_models
from bangfu_bot.broadcasts import models as broadcasts_models
from bangfu_bot.cases import models as cases_models
from bangfu_bot.conversation import models as conversation_models
from bangfu_bot.db import metadata
from bangfu_bot.fund import models as fund_models
from bangfu_bot.ledger import models as ledger_models
from bangfu_bot.loans import models as loans_models
from bangfu_bot.members import models as members_models
from bangfu_bot.notify import models as notify_models
from bangfu_bot.outcomes import models as outcomes_models
from bangfu_bot.reports import models as reports_models
from bangfu_bot.todos import models as todos_models
from bangfu_bot.visits import models as visits_models
from bangfu_bot.wechat import models as wechat_models

__all__ = [
    "broadcasts_models",
    "cases_models",
    "clock_models",
    "conversation_models",
    "fund_models",
    "ledger_models",
    "loans_models",
    "members_models",
    "metadata",
    "notify_models",
    "outcomes_models",
    "reports_models",
    "scheduler_models",
    "todos_models",
    "visits_models",
    "wechat_models",
]
