"""Per-layer operation counts from back-end events and from the float model's hooks."""
