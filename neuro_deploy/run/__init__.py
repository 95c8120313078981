"""Runs: simulate a file on an image (tiles, back end, memory check), evaluate a dataset (Ray)."""
