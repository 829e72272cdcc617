"""A kill -9 harness for the real server, in the manner of Jepsen.

Client threads drive every kind of write at once (events, batches, traits, identifications,
visitor deletions, rules, lists, webhooks, cohorts, auto-discovery triggers) while compaction,
cohort refreshes, discovery runs and webhook deliveries are in progress. At seeded moments,
counted in acknowledged writes, the whole server (granian workers and the delivery process) is
killed with SIGKILL and started again on the same data directory.

Every write is recorded as acknowledged (a 2xx answer arrived) or unknown (the connection
dropped). Between a kill and the restart the profiles are read from the store at rest; after
each restart, with the writers held, the server is checked against the record: acknowledged
writes present exactly once, acknowledged deletions staying deleted, unacknowledged writes
whole or absent. At the end, every acknowledged identification and list change must have
reached the HTTPS receiver at least once.

The server runs the checked-out code, as `api.process.ServerProcess` starts it for every e2e
test.

`run_crash` returns a JSON-ready summary whose `defects` list is empty when nothing was wrong.
Used by tests/e2e/test_crash_kills.py and benchmarks/crash.py.

The modules: `_config` (settings, shared constants), `_findings` (defects and observations),
`_driver` (client threads, requests, the gate that holds them), `_writes` and
`_config_writes` (what each writer sends), `_record` (what was acknowledged), `_webhooks`
(the receiver's side), `_verify` (the checks after each restart), `_at_rest` (the store read
with no server running), `_summary` (the run's summary) and `_harness` (the run itself).
"""

from ._config import CrashConfig
from ._harness import iter_defects, run_crash

__all__ = ["CrashConfig", "iter_defects", "run_crash"]
