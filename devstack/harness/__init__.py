"""Real services started by the project: one code path for the tests, .ci/run and `learn up`."""
