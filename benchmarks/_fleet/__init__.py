"""A simulated fleet of browser devices for benchmarks/drift.py: who they are (build), how they
change (device, calendar), where they connect from (network), how each visit is made (visit),
and the ground truth and figures (truth)."""
