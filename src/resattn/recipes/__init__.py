"""Training recipes shipped with the package (TOML)."""
