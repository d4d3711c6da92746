"""Pieces every entry point shares: user-facing errors, typed configs, run records."""
