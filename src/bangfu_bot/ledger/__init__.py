"""The yearly ledger of members in hardship (困难党员台账)."""
