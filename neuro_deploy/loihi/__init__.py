"""The target's description: Loihi fixed-point limits and the checker, Loihi 2 per-core budgets."""
