"""Hardening tests: malformed input, invalid parameters and reliability of every estimator."""
