"""Outbound notifications: what the domain tells people (intents), the outbox and its
dispatcher."""
