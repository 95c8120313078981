"""What a run's fixed-point arithmetic lost: the sums that wrapped or saturated, per synapse and per
layer, and each synapse's largest |sum| before its shift (to set beside its calibration peak).

Only the record: each back end counts with its own code (the fast back end in torch over whole
windows, the Lava back end inside its process models, step by step), so that their agreement checks
both. Counts add up over tiles; peaks take the largest.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Overflow:
    """`synapse_wraps`: sums a synapse's accumulator wrapped (Conv: 24 bits, Dense/Sparse: int32);
    `synapse_peaks`: its largest |sum| before the shift; `layer_wraps`: LIF currents `u` that wrapped
    (24 bits); `layer_saturations`: LIF voltages `v`, graded neuron states and host layer payloads
    that saturated (24 bits). Counts are neuron-steps (one per value per step)."""

    synapse_wraps: dict[str, int] = field(default_factory=dict)
    synapse_peaks: dict[str, float] = field(default_factory=dict)
    layer_wraps: dict[str, int] = field(default_factory=dict)
    layer_saturations: dict[str, int] = field(default_factory=dict)

    def add(self, other: Overflow) -> None:
        """Sum another run's counts (another tile) into these, and keep the larger peaks."""
        for mine, theirs in ((self.synapse_wraps, other.synapse_wraps), (self.layer_wraps, other.layer_wraps),
                             (self.layer_saturations, other.layer_saturations)):
            for name, n in theirs.items():
                mine[name] = mine.get(name, 0) + int(n)
        for name, peak in other.synapse_peaks.items():
            self.synapse_peaks[name] = max(self.synapse_peaks.get(name, 0.0), float(peak))

    @property
    def total(self) -> int:
        """Every value that wrapped or saturated, in synapses and layers."""
        return sum(self.synapse_wraps.values()) + sum(self.layer_wraps.values()) + sum(self.layer_saturations.values())
