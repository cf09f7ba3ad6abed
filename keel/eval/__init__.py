"""``keel eval``: run a dataset of tasks against configurations, judge each run by the
dataset's checks and report success rate, pass^k, cost, latency, interventions and failure
classes side by side (docs/operations.md, "Evals")."""
