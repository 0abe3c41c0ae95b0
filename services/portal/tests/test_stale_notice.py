"""A read that could not wait long enough for the person's own writes (the service answered
with `X-Rapport-Stale`, docs/service-guide.md "shared.consistency") is shown as a polite
notice on the page, not silently: the page may lack what they have just saved."""

from .test_pages import EMMA, SESSION, THERAPISTS

NOTICE = "Some of this page may be a few seconds out of date — refresh to see the latest"


def _record(services, stale: bool) -> None:
    services.on("GET", "/therapists", THERAPISTS)
    services.on("GET", "/clients/c-1", EMMA)
    headers = {"X-Rapport-Stale": "scheduling:42"} if stale else {}
    services.on("GET", "/clients/c-1/sessions", [SESSION], headers=headers)


def test_a_stale_read_shows_a_notice_that_the_page_may_be_out_of_date(signed_in, services):
    _record(services, stale=True)
    page = signed_in("admin").get("/clients/c-1")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "Emma Hart" in html
    assert NOTICE in html
    assert 'class="msg info stale" role="status"' in html  # announced politely, not as an alert


def test_a_current_read_shows_no_notice(signed_in, services):
    _record(services, stale=False)
    html = signed_in("admin").get("/clients/c-1").get_data(as_text=True)
    assert "Emma Hart" in html and NOTICE not in html


def test_the_notice_is_for_the_one_page_only(signed_in, services):
    client = signed_in("admin")
    _record(services, stale=True)
    assert NOTICE in client.get("/clients/c-1").get_data(as_text=True)
    _record(services, stale=False)
    assert NOTICE not in client.get("/clients/c-1").get_data(as_text=True)
