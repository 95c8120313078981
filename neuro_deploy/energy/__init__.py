"""Energy: operation counts from back-end events or float-model hooks, priced on hardware profiles.

    counts.py    per-layer, per-step counts from events and the network description
    run.py       run any network file (ours or plain netx) on an input and count it
    hooks.py     counts of the float PyTorch model (activity-based, strict and ANN conventions)
    profiles.py  neuro_deploy/hw_profiles/*.toml (package data), validated, with the evidence for every number
    report.py    pricing, and the table, CSV, JSON and bar chart
    deployment.py  static power and active cores, priced on a deployment plan's chips, cores and time
    compare.py   the paper's VLIFNet vs ESDNet comparison, from measured activity
    analytic.py  counts from the architectures alone, and the paper's global-rate method, switchable
"""
