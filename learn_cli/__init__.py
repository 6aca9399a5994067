"""`learn`: the command line for developers and operators (the `learn` console script).

Production commands (migrate, schedules, webhooks serve, search, ...) import only the kernel and
the services; `learn up` and `learn histories record` import `devstack` lazily, which needs the
`[dev]` extra.
"""
