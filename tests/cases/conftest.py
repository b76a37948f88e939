"""The conversation fixtures (county, chat) for procedure tests."""

from tests.conversation.conftest import chat, county  # noqa: F401
