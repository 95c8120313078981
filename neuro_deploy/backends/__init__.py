"""Back ends that run a quantized network: the fast integer simulator and Lava's processes."""
