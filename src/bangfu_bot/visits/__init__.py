"""Consolation visits (走访慰问): festival campaigns and event-triggered visits."""
