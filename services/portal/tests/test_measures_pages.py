"""The measures pages against a stand-in for the services: the staff entry form (once per
form, refusals beside the item), resending a link (reception included, no link shown), the
caseload, the dashboard's charts and CSV, and risk alerts for an unanswered item."""

import re

from .conftest import csrf_of
from .test_pages import EMMA, EMMA_FULL, THERAPISTS

HTML = {"Accept": "text/html"}
PHQ9 = {
    "code": "PHQ-9",
    "title": "Patient Health Questionnaire (PHQ-9)",
    "period": "the last 2 weeks",
    "preamble": "Over the last 2 weeks...",
    "total_range": [0, 27],
    "caseness": 10,
    "items": [
        {
            "number": n,
            "text": f"item text {n}",
            "not_applicable": None,
            "reversed": False,
            "risk": n == 9,
        }
        for n in range(1, 10)
    ],
    "options": [
        {"value": v, "label": label}
        for v, label in enumerate(
            ("Not at all", "Several days", "More than half the days", "Nearly every day")
        )
    ],
    "bands": [
        {"from": f, "above": False, "label": label}
        for f, label in (
            (0, "minimal"),
            (5, "mild"),
            (10, "moderate"),
            (15, "moderately severe"),
            (20, "severe"),
        )
    ],
}
WSAS = {
    "code": "WSAS",
    "title": "Work and Social Adjustment Scale (WSAS)",
    "period": "now",
    "preamble": "...",
    "total_range": [0, 40],
    "caseness": 10,
    "items": [
        {
            "number": n,
            "text": f"wsas {n}",
            "not_applicable": "retired" if n == 1 else None,
            "reversed": False,
            "risk": False,
        }
        for n in range(1, 6)
    ],
    "options": [{"value": v, "label": ""} for v in range(9)],
    "bands": [
        {"from": 0, "above": False, "label": "subclinical"},
        {"from": 10, "above": False, "label": "significant impairment"},
        {"from": 20, "above": True, "label": "moderately severe or worse"},
    ],
}
REQUESTS = {
    "requests": [
        {
            "request_id": "r-open",
            "client_id": "c-1",
            "status": "sent",
            "session_starts_at": "2026-12-03T10:00:00Z",
            "due_at": "2026-12-01T10:00:00Z",
            "expires_at": "2026-12-03T10:50:00Z",
            "link_issued_at": "2026-12-01T10:00:00Z",
            "resends": 0,
        },
        {
            "request_id": "r-done",
            "client_id": "c-1",
            "status": "completed",
            "due_at": "2026-11-20T10:00:00Z",
        },
    ]
}


def measures_page(services):
    services.on("GET", "/clients/c-1", EMMA_FULL)
    services.on(
        "GET", "/instruments", {"instruments": [PHQ9, WSAS], "default_set": ["PHQ-9", "WSAS"]}
    )
    services.on(
        "GET", "/clients/c-1/instruments", {"client_id": "c-1", "instruments": ["PHQ-9", "WSAS"]}
    )
    services.on(
        "GET",
        "/clients/c-1/trajectory",
        {
            "series": [
                {
                    "instrument": "WSAS",
                    "points": [
                        {
                            "at": "2026-11-01T09:00:00Z",
                            "session_number": 1,
                            "total": 25,
                            "band": "moderately severe or worse",
                        }
                    ],
                }
            ]
        },
    )
    services.on("GET", "/clients/c-1/outcomes", {"outcomes": []})
    services.on("GET", "/questionnaire-requests", REQUESTS)


def test_the_therapist_enters_answers_in_the_room_once_per_form(signed_in, services):
    measures_page(services)
    client = signed_in("therapist")
    html = client.get("/clients/c-1/measures").get_data(as_text=True)
    assert (
        "moderately severe or worse" in html and "21–40" in html
    )  # bands as measures describes them
    assert html.count('<fieldset class="item') == 9 + 5 and "risk item" in html
    assert 'name="answers.PHQ-9.9"' in html and 'value="na"' in html
    form = {
        "csrf_token": csrf_of(html),
        "form": "enter-answers",
        "back": "/clients/c-1/measures",
        "idempotency_key": "k-123",
        "instrument": ["PHQ-9", "WSAS"],
        **{f"answers.PHQ-9.{n}": "2" for n in range(1, 9)},
        "answers.PHQ-9.9": "1",
        **{f"answers.WSAS.{n}": "" for n in range(1, 6)},
    }
    services.on(
        "POST",
        "/responses",
        {
            "response_id": "x",
            "scores": [{"instrument": "PHQ-9", "total": 17.0, "band": "moderately severe"}],
            "risk_alerts": [{"alert_id": "a-1", "instrument": "PHQ-9", "item": 9, "answer": 1}],
        },
        status=201,
    )
    r = client.post("/clients/c-1/measures/responses", data=form)
    assert r.status_code == 302
    sent = services.last("POST", "/responses")
    assert sent["json"] == {
        "client_id": "c-1",
        "answers": {"PHQ-9": [2] * 8 + [1]},
    }  # WSAS left out
    assert sent["idempotency_key"] == "k-123:measures:POST:/responses"  # a second press stores once
    page = client.get("/clients/c-1/measures").get_data(as_text=True)
    assert "Answers saved: PHQ-9 17 (moderately severe)" in page and "risk inbox" in page


def test_answers_the_rule_cannot_score_come_back_beside_the_item_with_the_input_kept(
    signed_in, services
):
    measures_page(services)
    client = signed_in("therapist")
    html = client.get("/clients/c-1/measures").get_data(as_text=True)
    services.on(
        "POST",
        "/responses",
        {
            "status": 422,
            "title": "Unprocessable Entity",
            "errors": [
                {"field": "answers.PHQ-9.9", "reason": "missing: please answer this question"}
            ],
        },
        status=422,
    )
    form = {
        "csrf_token": csrf_of(html),
        "form": "enter-answers",
        "back": "/clients/c-1/measures",
        "idempotency_key": "k-9",
        "instrument": ["PHQ-9", "WSAS"],
        **{f"answers.PHQ-9.{n}": "3" for n in range(1, 9)},
        "answers.PHQ-9.9": "",
    }
    r = client.post("/clients/c-1/measures/responses", data=form)
    page = r.get_data(as_text=True)
    assert r.status_code == 422
    assert 'id="enter-answers-answers.PHQ-9.9-error"' in page and "missing: please answer" in page
    assert 'aria-describedby="enter-answers-answers.PHQ-9.9-error"' in page
    assert re.search(r'name="answers.PHQ-9.1" value="3" checked', page), "what was entered is kept"
    assert 'name="idempotency_key" value="k-9"' in page


def test_reception_resends_a_link_without_seeing_it_or_any_score(signed_in, services):
    services.on("GET", "/clients/c-1", EMMA)
    services.on("GET", "/questionnaire-requests", REQUESTS)
    services.on(
        "POST",
        "/questionnaire-requests/r-open/resend",
        {"request_id": "r-open", "resend": 1},
        status=202,
    )
    client = signed_in("admin")
    html = client.get("/clients/c-1/measures").get_data(as_text=True)
    assert (
        "Questionnaire links" in html and "Resend link" in html and html.count("Resend link") == 1
    )
    for clinical in ("Outcome", "Enter answers", "svg", "/q/"):
        assert clinical not in html
    assert not [
        c
        for c in services.calls
        if c["path"].endswith(("/trajectory", "/outcomes", "/instruments"))
    ]
    r = client.post(
        "/clients/c-1/measures/requests/r-open/resend",
        data={
            "csrf_token": csrf_of(html),
            "form": "resend-r-open",
            "back": "/clients/c-1/measures",
        },
    )
    assert r.status_code == 302 and services.last("POST", "/questionnaire-requests/r-open/resend")
    assert "being sent again" in client.get("/clients/c-1/measures").get_data(as_text=True)
    assert (
        client.post(
            "/clients/c-1/measures/requests/..%2Fx/resend", data={"csrf_token": csrf_of(html)}
        ).status_code
        == 404
    )


def test_a_second_resend_too_soon_is_shown_beside_the_button(signed_in, services):
    services.on("GET", "/clients/c-1", EMMA)
    services.on("GET", "/questionnaire-requests", REQUESTS)
    services.on(
        "POST",
        "/questionnaire-requests/r-open/resend",
        {
            "status": 409,
            "title": "Conflict",
            "detail": "the link was resent moments ago",
            "code": "just_resent",
        },
        status=409,
    )
    client = signed_in("admin")
    html = client.get("/clients/c-1/measures").get_data(as_text=True)
    r = client.post(
        "/clients/c-1/measures/requests/r-open/resend",
        data={
            "csrf_token": csrf_of(html),
            "form": "resend-r-open",
            "back": "/clients/c-1/measures",
        },
    )
    assert r.status_code == 409 and "the link was resent moments ago" in r.get_data(as_text=True)


def test_the_caseload_joins_records_and_measures(signed_in, services):
    services.on("GET", "/therapists", THERAPISTS)
    services.on(
        "GET",
        "/therapists/t-1/caseload",
        {
            "therapist_id": "t-1",
            "clients": [
                {
                    "client_id": "c-1",
                    "given_name": "Emma",
                    "family_name": "Hart",
                    "phase": "middle",
                    "attended_sessions": 6,
                    "suggested_phase": "middle",
                    "next_session": {"starts_at": "2026-12-07T10:00:00Z"},
                },
                {
                    "client_id": "c-2",
                    "given_name": "John",
                    "family_name": "Wood",
                    "phase": "initial",
                    "attended_sessions": 0,
                },
            ],
        },
    )
    services.on(
        "GET",
        "/therapists/t-1/latest-scores",
        {
            "therapist_id": "t-1",
            "clients": [
                {
                    "client_id": "c-1",
                    "latest": [{"instrument": "PHQ-9", "total": 12.0, "band": "moderate"}],
                    "open_alerts": [
                        {
                            "alert_id": "a-1",
                            "instrument": "CORE-10",
                            "item": 6,
                            "answer": None,
                            "unanswered": True,
                        }
                    ],
                }
            ],
        },
    )
    html = signed_in("therapist").get("/caseload?therapist=t-2").get_data(as_text=True)
    assert services.last("GET", "/therapists/t-1/caseload")  # a therapist sees their own only
    row = html.split('id="client-c-1"')[1].split("</tr>")[0]
    assert "Middle" in row or "middle" in row
    assert (
        ">6<" in row and "Mon 07 Dec 2026, 10:00" in row and "PHQ-9 12" in row and "moderate" in row
    )
    assert "1 open alert" in row and "CORE-10 item 6 left unanswered" in row
    assert "none yet" in html.split('id="client-c-2"')[1]

    services.on("GET", "/therapists/t-2/caseload", {"therapist_id": "t-2", "clients": []})
    services.on("GET", "/therapists/t-2/latest-scores", {"therapist_id": "t-2", "clients": []})
    lead = signed_in("clinical_lead").get("/caseload?therapist=t-2").get_data(as_text=True)
    assert "Caseload: Mr Tom Reid" in lead and '<label for="therapist">' in lead
    assert signed_in("admin").get("/caseload", headers=HTML).status_code == 403


def test_the_dashboard_charts_recovery_and_improvement_over_time_and_downloads_csv(
    signed_in, services
):
    services.on("GET", "/therapists", THERAPISTS)
    rate = lambda c, o: {"count": c, "of": o, "rate": c / o if o else None}  # noqa: E731
    summary = {
        "courses": 2,
        "finished_with_paired_scores": 2,
        "recovery": rate(1, 2),
        "reliable_recovery": rate(1, 2),
        "reliable_improvement": rate(2, 2),
        "reliable_deterioration": rate(0, 2),
    }

    def month(m):
        return {
            "month": m,
            "practice": summary,
            "by_therapist": [{"key": "t-1", **summary}],
            "by_problem_area": [{"key": "grief", **summary}],
        }

    services.on(
        "GET",
        "/dashboards/practice",
        {
            "practice": summary,
            "by_therapist": [{"key": "t-1", **summary}],
            "by_problem_area": [{"key": "grief", **summary}],
            "by_month": [month("2026-10"), month("2026-11")],
            "national": {"reliable_recovery": 0.51, "reliable_improvement": 0.69},
        },
    )
    services.on("GET", "/dashboards/practice.csv", "period,group,key\nall,practice,all\n")
    client = signed_in("clinical_lead")
    html = client.get("/dashboard?from=2026-01-01&to=2026-11-30").get_data(as_text=True)
    for title in (
        "Recovery by therapist, month by month",
        "Reliable improvement by therapist, month by month",
        "Recovery by problem area, month by month",
        "Reliable improvement by problem area, month by month",
    ):
        assert f"<title>{title}</title>" in html and f"{title}: data table" in html
    assert "Dr Sarah Okafor, 2026-11: 50%" in html and "national 69%" in html
    assert '<th scope="row">2026-10</th>' in html
    assert 'href="/dashboard.csv?from=2026-01-01&amp;to=2026-11-30"' in html
    csv = client.get("/dashboard.csv?from=2026-01-01&to=2026-11-30")
    assert (
        csv.status_code == 200
        and csv.mimetype == "text/csv"
        and csv.get_data(as_text=True).startswith("period,")
    )
    assert "attachment" in csv.headers["Content-Disposition"]
    assert services.last("GET", "/dashboards/practice.csv")["args"] == {
        "from": "2026-01-01",
        "to": "2026-11-30",
    }
    assert signed_in("therapist").get("/dashboard.csv", headers=HTML).status_code == 403


def test_an_unanswered_risk_item_reads_as_such_in_the_risk_inbox(signed_in, services):
    services.on(
        "GET",
        "/risk-alerts",
        {
            "alerts": [
                {
                    "alert_id": "a-1",
                    "client_id": "c-1",
                    "instrument": "CORE-10",
                    "item": 6,
                    "answer": None,
                    "unanswered": True,
                    "indicated_at": "2026-11-20T09:00:00Z",
                    "status": "open",
                }
            ]
        },
    )
    html = signed_in("therapist").get("/risk").get_data(as_text=True)
    assert "CORE-10 item 6 left unanswered: ask the client" in html and "answered None" not in html
