"""The demo seed's pure parts: answers that add up to the story's totals, and course dates
that fall on the case's weekday in the practice's zone. (The seed itself runs end to end in
tests/e2e against every service, twice, to show it is idempotent.)"""

from datetime import date

import pytest

from deploy.local.seed import CASES, LONDON, answers_for, first_session


@pytest.mark.parametrize("total", range(25))
def test_phq9_answers_add_up_and_never_touch_the_self_harm_item(total):
    answers = answers_for(total, 9)
    assert sum(answers) == total and answers[8] == 0 and all(0 <= a <= 3 for a in answers)


@pytest.mark.parametrize("total", range(22))
def test_gad7_answers_add_up(total):
    answers = answers_for(total, 7)
    assert sum(answers) == total and all(0 <= a <= 3 for a in answers)


def test_the_stories_are_the_ones_in_the_brief():
    emma, john = CASES[0], CASES[1]
    assert (emma.phq9[0], emma.phq9[-1], len(emma.phq9)) == (17, 6, 16)
    assert (john.phq9[0], john.phq9[-1], john.boosters) == (19, 7, True)
    assert emma.formulation["problem_areas"] == ["role_dispute"] and john.formulation[
        "problem_areas"
    ] == ["grief"]
    assert any(p["unilateral_partner"] for p in emma.formulation["inventory"])
    for case in CASES:
        assert len(case.phq9) == len(case.gad7) == case.attended


def test_a_course_starts_on_the_case_weekday_at_its_local_hour_across_the_clock_change():
    emma = CASES[0]
    start = first_session(emma, date(2026, 11, 26))  # 18 weeks back is July: BST
    local = start.astimezone(LONDON)
    assert local.weekday() == emma.weekday and local.hour == emma.hour
    assert start.utcoffset().total_seconds() == 0 and start.hour == emma.hour - 1
