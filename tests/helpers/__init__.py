"""What tests share: `polling.eventually` (poll with a deadline, never sleep to synchronise) and
`corruption` (hypothesis strategies that damage a real payload item)."""
