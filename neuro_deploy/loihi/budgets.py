"""Loihi 2's per-core budgets, boards and per-operation times: one typed table, each entry with its source.

Beside `neuro_deploy.loihi.limits.LIMITS` (what a layer's numbers must respect) this table says how much
of a core a layer may take. `evidence` grades each entry: `lava` (Lava's own code), `log` (Intel's
compiler output printed in lava-dl's tutorials, docs/loihi-target.md section 4), `paper` (a
publication or Intel's brief) or `assumed` (no public figure: a stand-in, said so).
docs/loihi-target.md section 4 is this table's prose.
"""

from __future__ import annotations

from dataclasses import dataclass

EVIDENCE = ("lava", "log", "paper", "assumed")


@dataclass(frozen=True)
class Budget:
    name: str
    value: float
    unit: str
    what: str
    source: str
    evidence: str


_LOG_SDNN = "lava-dl tutorials/lava/lib/dl/netx/pilotnet_sdnn/benchmark.ipynb (Intel compiler log)"
_LOG_OXFORD = "lava-dl tutorials/lava/lib/dl/netx/oxford/run.ipynb (Intel compiler log)"
_DAVIES = "Davies et al., IEEE Micro 38(1) 2018, Table 2 (Loihi 1 figures; no Loihi 2 figure is public)"

BUDGETS = {b.name: b for b in (
    Budget("neurons", 4095, "neurons", "neurons one core holds",
           "lava-dl tutorials/lava/lib/dl/netx/yolo_kp/run.ipynb: 3,584 neurons are 87.52 % of a core (3584/4095); "
           "PilotNet SDNN's blocks stop below 4,096", "log"),
    Budget("synaptic_memory", 12000, "words", "synaptic memory of one core (cost_db.registers['SynMem'])",
           f"{_LOG_SDNN} and {_LOG_OXFORD}: 'Violation ... SynMem ... registers[reg_name]=12000'", "log"),
    Budget("neuron_groups", 8, "groups", "neuron groups (layer blocks) one core holds",
           "yolo_kp log: one group is 12.5 % of a core", "log"),
    Budget("input_axons", 4096, "axons", "input axons one core receives on",
           "Loihi 1's 4,096 input axons per core (Davies 2018); Loihi 2's figure is not public", "assumed"),
    Budget("output_axons", 4096, "entries", "output axon (axon map) entries one core sends on",
           "Loihi 1's 4,096 output axons per core (Davies 2018); Loihi 2's figure is not public", "assumed"),
)}

#: chips' worth of neuro cores: Lava's mapper uses 120 per Loihi 2 chip (128 per Loihi 1 chip).
CORES_PER_CHIP = Budget("cores_per_chip", 120, "cores", "neuro cores per chip",
                        "lava-nc src/lava/magma/compiler/subcompilers/constants.py NUM_VIRTUAL_CORES_L3, mapper.py",
                        "lava")

#: the systems a plan is checked against: name -> (chips, source)
BOARDS = {
    "oheo-gulch": (1, "one Loihi 2 chip: the board lava-dl's tutorials run on"),
    "kapoho-point": (8, "lava-dl benchmark notebooks: num_chips = 8 for 'kp'"),
    "hala-point": (1152, "Intel's Hala Point announcement (2024): 1,152 Loihi 2 chips, 140,544 cores"),
}

# ---- how synapses are stored (docs/loihi-target.md, section 4) --------------------------------
WORD_BITS = Budget("word_bits", 64, "bits", "one unit of synaptic memory",
                   "inferred: conv kernels in the PilotNet SDNN log take exactly Cin x taps x ceil(Cout x bits / 64) "
                   "units", "log")
DENSE_EXTRA_BITS = Budget("dense_extra_bits", 11, "bits", "per dense synapse beyond its weight bits",
                          f"inferred: {_LOG_SDNN} and {_LOG_OXFORD}: every whole-layer dense allocation equals "
                          "axons x ceil((header + n (bits + 11)) / 64)", "log")
DENSE_HEADER_BITS = Budget("dense_header_bits", 16, "bits", "per input axon's synapse list",
                           "inferred: any value in 1..22 reproduces the dense allocations of both logs; 16 chosen",
                           "log")
DELAY_BITS = Budget("delay_bits", 6, "bits", "per delayed synapse (delays up to 62)",
                    "netx's 62-step delay limit (lava/lib/dl/netx/hdf5.py) needs 6 bits; the field's real width "
                    "is not public", "assumed")

# ---- time per operation (docs/loihi-target.md, section 5) ---------------------------------------
TIMES_NS = {b.name: b for b in (
    Budget("synop", 3.5, "ns", "one synaptic op in a core", _DAVIES, "paper"),
    Budget("neuron_update", 8.4, "ns", "one neuron update (Davies' active figure, used for every update)",
           _DAVIES, "paper"),
    Budget("spike", 2.1, "ns", "one spike sent within a tile", _DAVIES, "paper"),
    Budget("hop", 6.5, "ns", "one mesh hop (Davies' slower, north-south figure)", _DAVIES, "paper"),
    Budget("barrier", 299.0, "ns", "the end-of-step barrier across the mesh", _DAVIES, "paper"),
    Budget("chip_hop", 500.0, "ns", "one chip-to-chip crossing", "no public figure", "assumed"),
)}
#: mesh geometry for hop counts: cores per tile and tiles per mesh row (Loihi 1's 4-core tiles, 8 per row).
CORES_PER_TILE = Budget("cores_per_tile", 4, "cores", "neuro cores per mesh router", _DAVIES, "assumed")
TILES_PER_ROW = Budget("tiles_per_row", 8, "tiles", "tiles per row of the chip's mesh", _DAVIES, "assumed")


def board_chips(board: str) -> int:
    """Chips of a named board; an unknown name is a one-line error listing the boards."""
    from neuro_deploy.errors import NeuroDeployError

    if board not in BOARDS:
        raise NeuroDeployError(f"unknown board {board!r} (boards: {', '.join(BOARDS)})")
    return BOARDS[board][0]
