# Signalpost tasks. `just` is installed by `pip install -e '.[dev]'` (package rust-just).

serve *ARGS:
    signalpost serve {{ARGS}}

test *ARGS:
    pytest {{ARGS}}

test-all:
    pytest -m ''

bench:
    pytest benchmarks --benchmark-only -p no:cacheprovider -o addopts=''
    python benchmarks/load/ingest.py

lint:
    ruff check src tests benchmarks
    ruff format --check src tests benchmarks
