"""Activities: every side effect of learnflow, grouped by what they touch."""
