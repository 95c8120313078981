"""Independent cross-checks of the energy counts (optional extras: SANA-FE, NeuroBench)."""
