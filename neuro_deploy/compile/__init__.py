"""Compiler: capture, passes (lower, legalize, align, quantize), target check, write."""
