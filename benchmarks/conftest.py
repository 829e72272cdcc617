"""Micro benchmarks: `pytest benchmarks --benchmark-only -o addopts=''`."""
