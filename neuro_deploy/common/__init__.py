"""Helpers every stage may use: atomic file writes, progress, package data, memory budget, tiling."""
