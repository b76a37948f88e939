"""What the department and the supervision group read across domains: the fund against
the loans (reconciliation, the 基金 summary, the yearly fund report)."""
