"""Auto-discovery: which early behaviours predict that a user stays.

For every user whose retention window has fully passed: the events of their first
`activation_days` after they were first seen (or after their `signup_date` trait), and whether
they were active again between `retention_start_days` and `retention_end_days`. Candidates are
"did A at least N times" and sequences A → B and A → B → C (in order, others may come between)
inside the activation window. Each is scored by the phi coefficient of the 2×2 table (did it ×
retained), with a minimum support and a chi-square test. docs/auto-discovery.md has the method
and its limits: correlation, not causation.
"""

from __future__ import annotations

import math

import lmdb
import msgspec
import numpy as np

from . import _kernels, dictionary, profiles
from .scan import load
from .store import Store
from .tenant import Tenant
from .timeutil import parse_instant

DAY_US = 86_400_000_000
THRESHOLDS = (1, 2, 3, 5)  # "did A at least N times"


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    activation_days: int = 7
    retention_start_days: int = 7
    retention_end_days: int = 14
    min_support_share: float = 0.01
    min_support_users: int = 30
    max_p_value: float = 0.01
    top: int = 100  # sequences kept in a run's results


class Finding(msgspec.Struct):
    sequence: list[str]
    minCount: int  # 1 for plain sequences; N for "did the event at least N times"
    users: int
    retentionWith: float
    retentionWithout: float
    phi: float
    precision: float
    npv: float
    coverage: float
    lift: float
    pValue: float
    band: str


class Analysis(msgspec.Struct):
    usersAnalysed: int
    retained: int
    baselineRetention: float
    sequences: list[Finding]


def band(phi: float) -> str:
    if phi >= 0.4:
        return "highly predictive"
    if phi >= 0.3:
        return "moderately predictive"
    if phi >= 0.2:
        return "slightly predictive"
    return "not predictive"


def score(n11: int, n1: int, n_ret: int, n: int) -> tuple[float, float]:
    """(phi, p-value) of the table: n users, n_ret retained, n1 did it, n11 did it and stayed."""
    n10, n01 = n1 - n11, n_ret - n11
    n00 = n - n1 - n01
    denominator = math.sqrt(n1 * (n - n1) * n_ret * (n - n_ret))
    if denominator == 0:
        return 0.0, 1.0
    phi = (n11 * n00 - n10 * n01) / denominator
    # chi2 = n * phi^2 with one degree of freedom; its survival function is erfc(sqrt(chi2 / 2)).
    return phi, math.erfc(math.sqrt(n * phi * phi / 2))


def _finding(seq: list[str], k: int, n11: int, n1: int, n_ret: int, n: int) -> Finding:
    phi, p = score(n11, n1, n_ret, n)
    base = n_ret / n
    with_ = n11 / n1 if n1 else 0.0
    without = (n_ret - n11) / (n - n1) if n - n1 else 0.0
    npv = ((n - n1) - (n_ret - n11)) / (n - n1) if n - n1 else 0.0
    r = lambda x: round(x, 4)  # noqa: E731
    return Finding(
        seq, k, n1, r(with_), r(without), r(phi), r(with_), r(npv), r(n1 / n),
        r(with_ / base) if base else 0.0, float(f"{p:.3g}"), band(phi),
    )  # fmt: skip


def _activation(
    txn: lmdb.Transaction, store: Store, tenant: Tenant, settings: Settings, now: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[int, int]]:
    """(starts, codes, retained, users, code of each dense index) for the analysed users."""
    cols = load(txn, store, tenant.prefix, "events", ["user", "event"], 0, 2**62)
    ts, user, event = np.asarray(cols["ts"]), np.asarray(cols["user"]), np.asarray(cols["event"])
    if not len(ts):
        empty = np.zeros(0, np.int64)
        return np.zeros(1, np.int64), empty, empty.astype(bool), empty, {}
    order = np.lexsort((np.arange(len(ts)), ts, user))
    ts, user, event = ts[order], user[order].astype(np.int64), event[order]
    bounds = np.concatenate(([0], np.flatnonzero(np.diff(user)) + 1, [len(user)]))
    users = user[bounds[:-1]]
    first = ts[bounds[:-1]].copy()
    for i, start in _signups(txn, store, tenant, users).items():
        first[i] = start
    span = np.repeat(np.arange(len(users)), np.diff(bounds))
    age = ts - first[span]
    eligible = first + settings.retention_end_days * DAY_US <= now
    active = (age >= settings.retention_start_days * DAY_US) & (
        age < settings.retention_end_days * DAY_US
    )
    retained = np.bincount(span[active], minlength=len(users)) > 0
    early = (age >= 0) & (age < settings.activation_days * DAY_US) & eligible[span]
    # Analysed users: eligible ones (a user with no activation event is analysed too: they did
    # nothing early).
    analysed = np.flatnonzero(eligible)
    keep_rows = np.flatnonzero(early)
    dense_user = np.full(len(users), -1, np.int64)
    dense_user[analysed] = np.arange(len(analysed))
    row_user = dense_user[span[keep_rows]]
    names, codes = np.unique(event[keep_rows], return_inverse=True)
    per_user = np.bincount(row_user, minlength=len(analysed))
    starts = np.concatenate(([0], np.cumsum(per_user))).astype(np.int64)
    return (starts, codes.astype(np.int64), retained[analysed], users[analysed],
            {i: int(c) for i, c in enumerate(names)})  # fmt: skip


def _signups(
    txn: lmdb.Transaction, store: Store, tenant: Tenant, users: np.ndarray
) -> dict[int, int]:
    """Index -> signup time, for users with a parseable `signup_date` trait."""
    position = {int(u): i for i, u in enumerate(users)}
    out = {}
    for user_id, traits in profiles.all_traits(txn, store, tenant):
        raw = traits.get("signup_date")
        if not isinstance(raw, str):
            continue
        ident = dictionary.lookup(txn, store, tenant.prefix, dictionary.USER, user_id)
        if ident is None or ident not in position:
            continue
        try:
            out[position[ident]] = parse_instant(raw)
        except ValueError:
            continue
    return out


def analyse(
    txn: lmdb.Transaction, store: Store, tenant: Tenant, settings: Settings, now: int
) -> Analysis:
    starts, codes, retained, users, names_of = _activation(txn, store, tenant, settings, now)
    n, n_ret = len(users), int(retained.sum())
    if not n:
        return Analysis(0, 0, 0.0, [])
    names = dictionary.strings(txn, store, tenant.prefix, dictionary.EVENT, names_of.values())
    label = [names.get(names_of[i], f"#{names_of[i]}") for i in range(len(names_of))]
    e = len(label)
    support = max(settings.min_support_users, math.ceil(settings.min_support_share * n))
    found: list[Finding] = []
    kernel = _kernels.discovery()
    s_n1, s_n11 = kernel.singles(starts, codes, retained, e, np.asarray(THRESHOLDS))
    for a in range(e):
        for t, k in enumerate(THRESHOLDS):
            if s_n1[a, t] >= support:
                found.append(_finding([label[a]], k, int(s_n11[a, t]), int(s_n1[a, t]), n_ret, n))
    empty = np.zeros((0, 3), np.int64)
    p_n1, p_n11, _, _ = kernel.sequences(starts, codes, retained, e, empty)
    frequent = [(a, b) for a in range(e) for b in range(e) if a != b and p_n1[a, b] >= support]
    for a, b in frequent:
        found.append(_finding([label[a], label[b]], 1, int(p_n11[a, b]), int(p_n1[a, b]), n_ret, n))
    # A → B → C can only reach the support if A → B and B → C both do (anti-monotone).
    pairs = set(frequent)
    triples = np.asarray([(a, b, c) for a, b in frequent for c in range(e)
                          if c != b and (b, c) in pairs], np.int64).reshape(-1, 3)  # fmt: skip
    if len(triples):
        _, _, t_n1, t_n11 = kernel.sequences(starts, codes, retained, e, triples)
        for (a, b, c), k1, k11 in zip(triples.tolist(), t_n1.tolist(), t_n11.tolist(), strict=True):
            if k1 >= support:
                found.append(_finding([label[a], label[b], label[c]], 1, k11, k1, n_ret, n))
    significant = [f for f in found if f.pValue <= settings.max_p_value and f.phi > 0]
    significant.sort(key=lambda f: (-f.phi, len(f.sequence), f.sequence, f.minCount))
    kept: list[Finding] = []
    for f in significant:
        # "signup → A → B" done by exactly the users of "A → B" says nothing more: keep the
        # shorter one (same users and same retention, and it is contained in the longer).
        if not any(g.users == f.users and g.retentionWith == f.retentionWith and
                   _contains(f.sequence, g.sequence) for g in kept):  # fmt: skip
            kept.append(f)
        if len(kept) == settings.top:
            break
    return Analysis(n, n_ret, round(n_ret / n, 4), kept)


def _contains(longer: list[str], shorter: list[str]) -> bool:
    """Whether `shorter` is a subsequence of `longer`."""
    it = iter(longer)
    return len(shorter) < len(longer) and all(name in it for name in shorter)
