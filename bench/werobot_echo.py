"""The peer: WeRoBot's text echo with its default SQLite session, under bjoern.

Runs in a throw-away venv the bench makes (WeRoBot is not a project dependency), so it
imports nothing of ours. Usage: python werobot_echo.py PORT TOKEN APPID AES_KEY SESSION_DB
"""

import sys

import bjoern
import werobot
from werobot.session.sqlitestorage import SQLiteStorage

port, token, appid, aes_key, session_db = sys.argv[1:6]
robot = werobot.WeRoBot(
    token=token, app_id=appid, encoding_aes_key=aes_key, session_storage=SQLiteStorage(session_db)
)


@robot.text
def echo(message, session):
    # A session write per message, as a bot that remembers a dialogue must do.
    session["last"] = message.content
    return message.content


bjoern.run(robot.wsgi, "127.0.0.1", int(port))
