"""Outbound notifications: the outbox and its dispatcher."""
