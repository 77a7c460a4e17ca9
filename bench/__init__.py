"""Benchmarks: each script runs its anchor in the same run and prints ratio = ours / anchor."""
