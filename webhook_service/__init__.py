"""Inbound integration: signed webhooks that start Temporal workflows, and the reverse-ETL
program-certificate table read back through the same HTTP app.

Modules: `config` (settings), `signatures` (MIT Learn + Standard Webhooks HMAC), `models` (request
bodies and workflow inputs), `targets` (workflow type names and task queues, in one place),
`starter` (the Temporal seam), `app` (the Starlette app), `openapi`, `certificates`, `server`.
"""
