"""Validation helpers and shared docstring text."""
