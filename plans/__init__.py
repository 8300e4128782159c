"""The plan domain: forums, outcomes, plans, workstreams, tasks and the workflow."""
