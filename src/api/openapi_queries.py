"""The OpenAPI paths of the analytics queries: funnels, cohorts, device analytics and
auto-discovery."""

from __future__ import annotations

from typing import Any

from .openapi_parts import operation, path, query, ref


def query_paths() -> dict[str, Any]:
    return {
        "/v1/funnels/query": {
            "post": operation(
                "Users through a sequence of 2 to 20 steps: per step, conversion and time to "
                "convert; optional breakdown by an event property or a user trait.",
                body="FunnelQuery",
                response=ref("FunnelResult"),
                errors=("400", "401", "403", "404"),
            )
        },
        "/v1/cohorts": {
            "post": operation(
                "Create a behavioural cohort (event counts, sequences, traits; AND/OR/NOT) and "
                "evaluate it; membership then follows ingestion.",
                body="CohortIn",
                response=ref("CohortOut"),
            ),
            "get": operation(
                "Cohorts with their size and computedAt.",
                response=ref("CohortPage"),
                params=[query("limit", "1 to 100, default 20."), query("offset", "Default 0.")],
            ),
        },
        "/v1/cohorts/{cohort_id}": {
            "get": operation(
                "One cohort.",
                response=ref("CohortOut"),
                params=[path("cohort_id", "coh_…")],
                errors=("401", "403", "404"),
            ),
            "delete": operation(
                "Delete a cohort.",
                params=[path("cohort_id", "coh_…")],
                errors=("401", "403", "404"),
            ),
        },
        "/v1/cohorts/{cohort_id}/members": {
            "get": operation(
                "Member user ids, at most 500 per page; a cursor keeps reading the membership "
                "snapshot its first page read.",
                response=ref("MembersPage"),
                params=[
                    path("cohort_id", "coh_…"),
                    query("limit", "1 to 500, default 500."),
                    query("cursor", "nextCursor of the previous page."),
                ],
                errors=("400", "401", "403", "404"),
            )
        },
        "/v1/analytics/events": {
            "get": operation(
                "Identification counts in [from, to), grouped by verdict, platform, country, "
                "hour, day or week.",
                response=ref("EventsAnswer"),
                params=[
                    query("from", "ISO 8601.", required=True),
                    query("to", "ISO 8601.", required=True),
                    query("groupBy", "verdict, platform, country, hour, day or week."),
                    query("verdict", "allow, challenge or block."),
                ],
            )
        },
        "/v1/analytics/signals": {
            "get": operation(
                "Smart Signal counts, rates and trends against the previous window.",
                response=ref("SignalsAnswer"),
                params=[
                    query("from", "ISO 8601.", required=True),
                    query("to", "ISO 8601.", required=True),
                    query("groupBy", "signal, day or week."),
                    query("signal", "One signal name."),
                ],
            )
        },
        "/v1/auto-discovery/results": {
            "get": operation(
                "The latest completed auto-discovery run: early behaviours ranked by how well "
                "they predict retention (phi), with support and significance.",
                response=ref("RunAnswer"),
                params=[query("limit", "Sequences, 1 to 100, default 20.")],
                errors=("400", "401", "403", "404"),
            )
        },
        "/v1/auto-discovery/trigger": {
            "post": operation(
                "Queue a run (202); while one is queued or running, that one is answered.",
                response=ref("RunAnswer"),
                errors=("401", "403"),
            )
        },
        "/v1/auto-discovery/runs/{run_id}": {
            "get": operation(
                "One run, whatever its status.",
                response=ref("RunAnswer"),
                params=[path("run_id", "run_…"), query("limit", "1 to 100, default 20.")],
                errors=("400", "401", "403", "404"),
            )
        },
    }
