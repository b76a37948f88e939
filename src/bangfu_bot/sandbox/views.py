"""Placeholder until the sandbox page lands: registers nothing."""

from aiohttp import web


def setup_sandbox(app: web.Application) -> None:
    """Add the sandbox routes to the application."""
