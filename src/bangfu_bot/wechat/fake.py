"""A faithful local WeChat: the outbound API server and the push driver, shipped in the package.

Tests, the sandbox and the demo all use it; see fake_api.py and fake_push.py.
"""

from bangfu_bot.wechat.fake_api import FakeWeChatAPI
from bangfu_bot.wechat.fake_push import PLATFORM_ERROR, Delivery, PushDriver

__all__ = ["PLATFORM_ERROR", "Delivery", "FakeWeChatAPI", "PushDriver"]
