"""The assistance fund (困难党员帮扶基金): every movement a ledger line in fen."""
