"""Experiment suites shipped with the package (TOML): lists of ordinary training runs."""
