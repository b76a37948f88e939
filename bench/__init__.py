"""`make bench`: benchmarks that report ratios to baselines measured in the same run."""
