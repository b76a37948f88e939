"""Imports every domain's tables so the shared MetaData (and Alembic) sees them all."""

from bangfu_bot.db import metadata
from bangfu_bot.notify import models as notify_models
from bangfu_bot.wechat import models as wechat_models

__all__ = ["metadata", "notify_models", "wechat_models"]
