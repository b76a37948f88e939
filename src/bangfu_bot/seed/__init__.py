"""The demo county: a made-up county with three years of history, seeded through the same
domain services the bot uses (`bangfu-bot demo seed`, the sandbox's 「演示县」 button)."""
