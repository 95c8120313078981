"""Simulators of quantized networks: the fast integer back end and the Lava back end."""
