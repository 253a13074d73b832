"""Robustness suite: faults, hostile input, security and concurrency (run alone: pytest tests/robustness)."""
