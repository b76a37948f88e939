"""Broadcasts (通知) from the county department to an audience."""
