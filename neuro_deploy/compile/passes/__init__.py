"""Passes over the graph IR: lowering, latency alignment, quantization."""
