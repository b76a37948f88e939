"""Outcomes: the year's plan and what the help achieved for each household (issue 19)."""
