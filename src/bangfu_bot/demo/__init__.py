"""The demo county (示范县): a fictional roster, cases and ledger to train and try things on."""
