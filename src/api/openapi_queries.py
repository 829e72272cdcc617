"""The OpenAPI paths of the analytics queries: funnels, cohorts, device analytics and
auto-discovery."""

from __future__ import annotations

from typing import Any

from engine import cohort_store

from . import cohorts, device_analytics, discovery
from .openapi_parts import INSTANT_ORDER, STATE_FIELDS, WRITE_ERRORS, link, operation, path, ref
from .params import OFFSET

_COHORT = path("cohort_id", "The cohort id (coh_…).")
_FROM_TO = {INSTANT_ORDER: [["from", "to"]]}


def query_paths() -> dict[str, Any]:
    cohort_links = {
        name: link(target, "The cohort of this answer.", cohort_id="$response.body#/id")
        for name, target in (
            ("GetCohort", "getCohort"),
            ("DeleteCohort", "deleteCohort"),
            ("CohortMembers", "listCohortMembers"),
        )
    }
    return {
        "/v1/funnels/query": {
            "post": operation(
                "queryFunnel",
                "Users through a sequence of 2 to 20 steps: per step, conversion and time to "
                "convert; optional breakdown by an event property or a user trait. `from` must "
                "be before `to`; an unknown cohort_id answers 404.",
                body="FunnelQuery",
                response=ref("FunnelResult"),
                errors=("404",),
                extensions=_FROM_TO,
            )
        },
        "/v1/cohorts": {
            "post": operation(
                "createCohort",
                "Create a behavioural cohort (event counts, sequences, traits; AND/OR/NOT) and "
                "evaluate it; membership then follows ingestion. The name is unique; a window's "
                "`from` must be before its `to`.",
                body="CohortIn",
                response=ref("CohortOut"),
                status="201",
                links=cohort_links,
                extensions={**_FROM_TO, STATE_FIELDS: ["name"]},
                errors=WRITE_ERRORS,
            ),
            "get": operation(
                "listCohorts",
                "Cohorts with their size and computedAt.",
                response=ref("CohortPage"),
                params=(cohorts.LIMIT, OFFSET),
                errors=("400",),
            ),
        },
        "/v1/cohorts/{cohort_id}": {
            "get": operation(
                "getCohort",
                "One cohort.",
                response=ref("CohortOut"),
                params=[_COHORT],
                errors=("404",),
            ),
            "delete": operation(
                "deleteCohort",
                "Delete a cohort.",
                response=ref("CohortDeleted"),
                params=[_COHORT],
                errors=(*WRITE_ERRORS, "404"),
            ),
        },
        "/v1/cohorts/{cohort_id}/members": {
            "get": operation(
                "listCohortMembers",
                f"Member user ids, at most {cohort_store.MAX_PAGE} per page; a cursor keeps "
                "reading the membership snapshot its first page read.",
                response=ref("MembersPage"),
                params=[_COHORT, cohorts.MEMBERS_LIMIT.doc(), cohorts.CURSOR.doc()],
                errors=("400", "404"),
                extensions={STATE_FIELDS: ["cursor"]},
            )
        },
        "/v1/analytics/events": {
            "get": operation(
                "eventAnalytics",
                "Identification counts in [from, to), grouped by verdict, platform, country, "
                "hour, day or week.",
                response=ref("EventsAnswer"),
                params=device_analytics.EVENTS_PARAMS,
                errors=("400",),
                extensions=_FROM_TO,
            )
        },
        "/v1/analytics/signals": {
            "get": operation(
                "signalAnalytics",
                "Smart Signal counts, rates and trends against the previous window.",
                response=ref("SignalsAnswer"),
                params=device_analytics.SIGNALS_PARAMS,
                errors=("400",),
                extensions=_FROM_TO,
            )
        },
        "/v1/auto-discovery/results": {
            "get": operation(
                "discoveryResults",
                "The latest completed auto-discovery run: early behaviours ranked by how well "
                "they predict retention (phi), with support and significance; 404 before one.",
                response=ref("RunAnswer"),
                params=(discovery.LIMIT,),
                errors=("400", "404"),
            )
        },
        "/v1/auto-discovery/trigger": {
            "post": operation(
                "triggerDiscovery",
                "Queue a run (202); while one is queued or running, that one is answered.",
                response=ref("RunAnswer"),
                status="202",
                links={
                    "GetRun": link("getDiscoveryRun", "This run.", run_id="$response.body#/runId")
                },
                errors=WRITE_ERRORS,
            )
        },
        "/v1/auto-discovery/runs/{run_id}": {
            "get": operation(
                "getDiscoveryRun",
                "One run, whatever its status.",
                response=ref("RunAnswer"),
                params=[path("run_id", "The run id (run_…)."), discovery.LIMIT.doc()],
                errors=("400", "404"),
            )
        },
    }
