"""Hardship cases (困难党员帮扶申请) and their procedure."""
