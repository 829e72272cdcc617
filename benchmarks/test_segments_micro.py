"""Segment columns and compaction, each group beside a baseline measured in the same run.

- encode-*/decode-*: the column encodings of `engine.columns` for a group-commit segment (500
  rows) and a merged one (65,536 rows) / the plainest stdlib or numpy equivalent (baseline);
- merge-step: one `merge_step` of 16 level-0 segments of 500 events (read, decode, concatenate,
  encode, swap through the writer with a durable commit) / the same bytes copied raw: read the
  16 x 7 column values, join them per column, and have the writer delete the sources and put
  7 values in one durable transaction (baseline: the I/O floor of a merge);
- merge-step-large: the same with 16 level-1 segments of 8,000 rows (128,000 rows per step).
"""

from __future__ import annotations

import array
import itertools
import random

import numpy as np
import pytest

from engine import CompactionConfig, Engine, EngineConfig
from engine.columns import VAR, decode_fixed, decode_var, encode_fixed, encode_var
from engine.compaction import merge_step
from engine.segments import SCHEMAS, SegmentMeta, list_segments, write_segment
from engine.writer import WriteContext

RNG = random.Random(11)
COMPACTION = CompactionConfig(enabled=False)


def _column_data(rows: int) -> dict[str, list]:
    base = 1_768_000_000_000_000
    return {
        "ts": sorted(base + RNG.randrange(3_600_000_000) for _ in range(rows)),
        "received": [base + 3_600_000_000 + i for i in range(rows)],
        "user": [RNG.randrange(50_000) for _ in range(rows)],
        "event": [RNG.randrange(11) for _ in range(rows)],
        "props": [
            f'{{"path":"/p/{RNG.randrange(97)}","plan":"growth","n":{i}}}'.encode()
            for i in range(rows)
        ],
        "insert_id": [b""] * rows,
        "request_id": [b""] * rows,
    }


def _encode(columns: dict[str, list]) -> dict[str, bytes]:
    schema = SCHEMAS["events"]
    return {
        name: encode_var(values) if schema[name] == VAR else encode_fixed(values, schema[name])
        for name, values in columns.items()
    }


SIZES = {"500": _column_data(500), "65536": _column_data(65_536)}


# -- column encodings ----------------------------------------------------------------------


@pytest.mark.parametrize("rows", list(SIZES))
@pytest.mark.benchmark(group="encode-fixed")
def test_baseline_encode_fixed_stdlib_array(benchmark, rows):
    benchmark(lambda values: array.array("q", values).tobytes(), SIZES[rows]["ts"])


@pytest.mark.parametrize("rows", list(SIZES))
@pytest.mark.benchmark(group="encode-fixed")
def test_encode_fixed_i8(benchmark, rows):
    benchmark(encode_fixed, SIZES[rows]["ts"], "i8")


@pytest.mark.parametrize("rows", list(SIZES))
@pytest.mark.benchmark(group="decode-fixed")
def test_baseline_decode_fixed_frombuffer(benchmark, rows):
    raw = encode_fixed(SIZES[rows]["ts"], "i8")
    benchmark(np.frombuffer, raw, dtype="<i8")


@pytest.mark.parametrize("rows", list(SIZES))
@pytest.mark.benchmark(group="decode-fixed")
def test_decode_fixed_i8(benchmark, rows):
    raw = encode_fixed(SIZES[rows]["ts"], "i8")
    benchmark(decode_fixed, raw, "i8")


@pytest.mark.parametrize("rows", list(SIZES))
@pytest.mark.benchmark(group="encode-var")
def test_baseline_encode_var_join(benchmark, rows):
    benchmark(b"".join, SIZES[rows]["props"])


@pytest.mark.parametrize("rows", list(SIZES))
@pytest.mark.benchmark(group="encode-var")
def test_encode_var(benchmark, rows):
    benchmark(encode_var, SIZES[rows]["props"])


@pytest.mark.parametrize("rows", list(SIZES))
@pytest.mark.benchmark(group="decode-var")
def test_baseline_decode_var_split_lines(benchmark, rows):
    raw = b"\n".join(SIZES[rows]["props"])
    benchmark(raw.split, b"\n")


@pytest.mark.parametrize("rows", list(SIZES))
@pytest.mark.benchmark(group="decode-var")
def test_decode_var_to_list(benchmark, rows):
    raw = encode_var(SIZES[rows]["props"])
    benchmark(lambda: decode_var(raw).to_list())


# -- compaction ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def _prewarm(tmp_path_factory):
    """Measured: the first store of the process to take large writes stays slower for all its
    rounds (whichever test comes first would read high), so a throwaway store takes them."""
    with Engine.open(tmp_path_factory.mktemp("prewarm"), EngineConfig(compaction=COMPACTION)) as e:
        columns = _encode(_column_data(8_000))
        for _ in range(5):
            _raw_merge(e, _write_sources(e, columns, 8_000, 1))
            _merge(e, _write_sources(e, columns, 8_000, 1))


@pytest.fixture
def engine(tmp_path, _prewarm):
    """A fresh store per test, so that the real step and its baseline start from the same
    file state (early rounds grow the file, later ones reuse freed pages)."""
    e = Engine.open(tmp_path, EngineConfig(compaction=COMPACTION))
    yield e
    e.close()


_prefixes = (f"bench{i:08d}\x00L\x00".encode() for i in itertools.count())


def _write_sources(engine: Engine, columns: dict[str, bytes], rows: int, level: int) -> bytes:
    """16 segments of a fresh tenant prefix, written (and committed) outside the timing."""
    prefix = next(_prefixes)
    with engine.store.env.begin(write=True) as txn:
        for i in range(16):
            meta = SegmentMeta(rows, 1000 + i, 2000 + i, level, 0)
            write_segment(txn, engine.store, prefix, "events", columns, meta)
    return prefix


class _RawReplace:
    """The writer's half of the raw copy: delete the source values, put the joined ones."""

    def __init__(self, prefix: bytes, numbers: list[int], joined: dict[str, bytes]):
        self.prefix, self.numbers, self.joined = prefix, numbers, joined

    def apply(self, ctx: WriteContext) -> None:
        txn, db = ctx.txn, ctx.store.columns
        for name in self.joined:
            for n in self.numbers:
                txn.delete(self.prefix + b"events\x00" + n.to_bytes(8, "big") + name.encode(),
                           db=db)  # fmt: skip
        for name, value in self.joined.items():
            txn.put(self.prefix + b"events\x00merged" + name.encode(), value, db=db)


def _raw_merge(engine: Engine, prefix: bytes) -> None:
    """Shaped like merge_step: read and join outside the writer, then one small operation for
    the writer (big allocations inside the writer's transaction cost more: fresh pages fault)."""
    store = engine.store
    with store.read() as txn:
        numbers = [n for n, _ in list_segments(txn, store, prefix, "events")]
        joined = {
            name: b"".join(
                txn.get(prefix + b"events\x00" + n.to_bytes(8, "big") + name.encode(),
                        db=store.columns)
                for n in numbers
            )
            for name in SCHEMAS["events"]
        }  # fmt: skip
    engine.writer.run(_RawReplace(prefix, numbers, joined))


def _merge(engine: Engine, prefix: bytes) -> None:
    assert merge_step(engine.store, engine.writer, prefix, "events", COMPACTION)


@pytest.mark.parametrize(
    ("group", "rows", "level"), [("merge-step", 500, 0), ("merge-step-large", 8_000, 1)]
)
@pytest.mark.parametrize("kind", ["baseline_raw_copy", "merge_step"])
def test_merge(benchmark, engine, group, rows, level, kind):
    benchmark.group = group
    columns = _encode(_column_data(rows))
    run = _raw_merge if kind == "baseline_raw_copy" else _merge

    def setup():
        return (engine, _write_sources(engine, columns, rows, level)), {}

    benchmark.pedantic(run, setup=setup, rounds=20 if rows > 1000 else 40, warmup_rounds=5)
