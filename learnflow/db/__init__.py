"""Postgres: migrations, the connection pool and the catalog store."""
