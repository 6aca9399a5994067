"""Workflows: deterministic orchestration only. They import temporalio, the stdlib and
`learnflow.contracts`, and call activities by name."""
