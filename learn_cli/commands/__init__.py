"""CLI command modules: each defines register(app) and is discovered by learn_cli.cli."""
