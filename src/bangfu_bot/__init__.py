"""bangfu-bot: a WeChat official-account bot for assisting party members in hardship
(困难党员帮扶)."""

__version__ = "0.1.0"
