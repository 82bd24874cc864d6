"""Subcommands of the ``loihi-studio`` CLI: one module each, with ``register`` and ``run``."""
