"""Outcome dashboards from the measures_board projection: a therapist's caseload and the
practice for a date range (by therapist and by IPT problem area), with the number of
courses behind every rate and the national comparators; CSV for the practice."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, time

from flask import Response
from flask_smorest import Blueprint

from shared.auth import Forbidden, current_identity, requires

from ..domain.outcomes import NATIONAL, summarise
from ..schemas import PracticeDashboard, PracticeQuery, TherapistDashboard
from .access import board, clients
from .clients import outcome_row

blp = Blueprint("dashboards", __name__, description="Outcome dashboards")
RATES = ("recovery", "reliable_recovery", "reliable_improvement", "reliable_deterioration")


@blp.route("/dashboards/therapists/<therapist_id>", methods=["GET"])
@requires("therapist", "clinical_lead")
@blp.response(200, TherapistDashboard)
def therapist_dashboard(therapist_id):
    """A therapist's caseload outcomes (a therapist may see only their own)."""
    identity = current_identity()
    if identity.role == "therapist" and identity.therapist_id != therapist_id:
        raise Forbidden("you may see only your own caseload")
    episodes = list(board("episodes").find({"therapist_id": therapist_id}))
    rows = [outcome_row(e) for e in episodes]
    return {
        "therapist_id": therapist_id,
        "summary": summarise(rows),
        "national": NATIONAL,
        "courses": rows,
    }


def _grouped(pairs: list[tuple[dict, dict]], areas: dict) -> dict:
    """Summaries of (episode, outcome row) pairs: the whole, by therapist, by problem area
    (a client with two foci counts under both)."""
    by_therapist: dict[str, list] = {}
    by_area: dict[str, list] = {}
    for episode, row in pairs:
        by_therapist.setdefault(row["therapist_id"], []).append(row)
        for area in areas.get(episode["client_id"]) or ["not recorded"]:
            by_area.setdefault(area, []).append(row)
    return {
        "practice": summarise([row for _, row in pairs]),
        "by_therapist": [{"key": k, **summarise(v)} for k, v in sorted(by_therapist.items())],
        "by_problem_area": [{"key": k, **summarise(v)} for k, v in sorted(by_area.items())],
    }


def _practice(query) -> dict:
    start = datetime.combine(query["from_"], time.min, tzinfo=UTC)
    end = datetime.combine(query["to"], time.max, tzinfo=UTC)
    # a course counts in the period (and the month) its last paired measure fell in
    episodes = list(board("episodes").find({"last_measured_at": {"$gte": start, "$lte": end}}))
    pairs = [(e, outcome_row(e)) for e in episodes]
    areas = {
        c["_id"]: c.get("problem_areas") or []
        for c in clients().find({"_id": {"$in": list({e["client_id"] for e in episodes})}})
    }
    months: dict[str, list] = {}
    for episode, row in pairs:
        months.setdefault(episode["last_measured_at"].strftime("%Y-%m"), []).append((episode, row))
    return {
        "period": {"from": query["from_"].isoformat(), "to": query["to"].isoformat()},
        **_grouped(pairs, areas),
        "by_month": [{"month": m, **_grouped(v, areas)} for m, v in sorted(months.items())],
        "national": NATIONAL,
        "notes": [
            "recovery and reliable recovery: over courses that finished treatment "
            "(2+ attended sessions) and were a case at the start",
            "reliable improvement and deterioration: over courses that finished treatment",
            "a client with two problem areas counts under both",
            "by month: the month of a course's last paired measure",
        ],
    }


def _csv(report: dict) -> Response:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        [
            "period",
            "group",
            "key",
            "courses",
            "finished_with_paired_scores",
            *[f"{r}_{p}" for r in RATES for p in ("count", "of", "rate")],
            "national_reliable_recovery",
            "national_reliable_improvement",
        ]
    )
    for period, part in [("all", report), *[(m["month"], m) for m in report["by_month"]]]:
        _csv_rows(writer, period, part)
    name = f"practice-outcomes-{report['period']['from']}-{report['period']['to']}.csv"
    return Response(
        out.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def _csv_rows(writer, period: str, part: dict) -> None:
    groups = [("practice", "all", part["practice"])]
    groups += [("therapist", g["key"], g) for g in part["by_therapist"]]
    groups += [("problem_area", g["key"], g) for g in part["by_problem_area"]]
    for group, key, s in groups:
        writer.writerow(
            [
                period,
                group,
                key,
                s["courses"],
                s["finished_with_paired_scores"],
                *[
                    s[r][p] if s[r][p] is not None else ""
                    for r in RATES
                    for p in ("count", "of", "rate")
                ],
                NATIONAL["reliable_recovery"],
                NATIONAL["reliable_improvement"],
            ]
        )


@blp.route("/dashboards/practice", methods=["GET"])
@requires("clinical_lead")
@blp.arguments(PracticeQuery, location="query")
@blp.response(200, PracticeDashboard)
@blp.alt_response(200, content_type="text/csv", description="with ?format=csv", success=True)
def practice_dashboard(query):
    """Practice outcomes for courses whose last paired measure fell in [from, to]: recovery
    and reliable improvement rates with their denominators, by therapist and problem area,
    beside the national comparators."""
    report = _practice(query)
    return _csv(report) if query["format"] == "csv" else report


@blp.route("/dashboards/practice.csv", methods=["GET"])
@requires("clinical_lead")
@blp.arguments(PracticeQuery, location="query")
@blp.response(200, content_type="text/csv")
def practice_csv(query):
    """The practice dashboard as CSV."""
    return _csv(_practice(query))
