"""Development and operations tooling: the test harness (real services on free ports), the
offline demo's fake upstreams and `learn up`'s in-process supervisor.

Its dependencies (moto, flask, the time-skipping test server, schemathesis, pytest) are the
`[dev]` extra, never runtime dependencies of a worker or the search service; nothing in
`learnflow/`, `sources/`, `activities/`, `workflows/` or the services imports it.
"""
