"""The sandbox: a training ground where personas of a demo county chat with the bot."""
