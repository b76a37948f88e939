"""`bangfu-bot demo`: the whole mechanism played through the real webhook and the fake
WeChat (play.py), and chatting as anyone from a terminal (terminal.py). The demo county it
plays in is seeded by `bangfu_bot.seed`."""
