"""Instruction and leaf codes of compiled rule programs, shared by both evaluators.

Kept apart from the numba kernel so that importing the engine does not load numba: only a
backtest, which evaluates columns, needs it.
"""

LEAF, AND, OR = 0, 1, 2
EQ, NE, GT, GTE, LT, LTE, IN, NOT_IN, EXISTS, MISSING = range(10)
