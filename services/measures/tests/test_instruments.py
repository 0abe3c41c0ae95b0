"""Scoring of every instrument at its edges (pure, milliseconds)."""

import pytest

from services.measures.instruments import INSTRUMENTS, answer_errors, risk_items, score


def test_the_four_instruments_have_their_published_shapes():
    shapes = {c: (len(i.items), i.item_max, i.total_max) for c, i in INSTRUMENTS.items()}
    assert shapes == {
        "PHQ-9": (9, 3, 27),
        "GAD-7": (7, 3, 21),
        "WSAS": (5, 8, 40),
        "CORE-10": (10, 4, 40),
    }
    assert INSTRUMENTS["PHQ-9"].items[8] == (
        "Thoughts that you would be better off dead or of hurting yourself in some way"
    )
    assert INSTRUMENTS["CORE-10"].items[5] == "I made plans to end my life"


@pytest.mark.parametrize(
    "code,answers,total,band",
    [
        ("PHQ-9", [0] * 9, 0, "minimal"),
        ("PHQ-9", [3] * 9, 27, "severe"),
        ("GAD-7", [0] * 7, 0, "minimal"),
        ("GAD-7", [3] * 7, 21, "severe"),
        ("WSAS", [0] * 5, 0, "subclinical"),
        ("WSAS", [8] * 5, 40, "moderately severe or worse"),
        # CORE-10 items 2 and 3 are reversed: all zeros score 8, "all maxima" score 32
        ("CORE-10", [0] * 10, 8, "low"),
        ("CORE-10", [4] * 10, 32, "severe"),
        ("CORE-10", [0, 4, 4, 0, 0, 0, 0, 0, 0, 0], 0, "healthy"),
        ("CORE-10", [4, 0, 0, 4, 4, 4, 4, 4, 4, 4], 40, "severe"),
    ],
)
def test_all_zeros_and_all_maxima(code, answers, total, band):
    s = score(code, answers)
    assert (s.total, s.band, s.prorated) == (total, band, False)


def _answers_totalling(code, total):
    """Answers (no reversed items involved) that add up to `total`."""
    instrument = INSTRUMENTS[code]
    out = []
    for n in range(1, len(instrument.items) + 1):
        if n in instrument.reversed_items:
            out.append(instrument.item_max)  # reversed: counts 0
            continue
        take = min(instrument.item_max, total)
        out.append(take)
        total -= take
    assert total == 0
    return out


@pytest.mark.parametrize(
    "code,boundaries",
    [
        (
            "PHQ-9",
            [
                (4, "minimal"),
                (5, "mild"),
                (9, "mild"),
                (10, "moderate"),
                (14, "moderate"),
                (15, "moderately severe"),
                (19, "moderately severe"),
                (20, "severe"),
            ],
        ),
        (
            "GAD-7",
            [
                (4, "minimal"),
                (5, "mild"),
                (9, "mild"),
                (10, "moderate"),
                (14, "moderate"),
                (15, "severe"),
            ],
        ),
        (
            "WSAS",
            [
                (9, "subclinical"),
                (10, "significant impairment"),
                (20, "significant impairment"),
                (21, "moderately severe or worse"),
            ],
        ),
        (
            "CORE-10",
            [
                (5, "healthy"),
                (6, "low"),
                (10, "low"),
                (11, "mild"),
                (14, "mild"),
                (15, "moderate"),
                (19, "moderate"),
                (20, "moderate-to-severe"),
                (24, "moderate-to-severe"),
                (25, "severe"),
            ],
        ),
    ],
)
def test_each_band_boundary(code, boundaries):
    for total, band in boundaries:
        s = score(code, _answers_totalling(code, total))
        assert (s.total, s.band) == (total, band), (code, total)


def test_phq9_and_gad7_with_any_item_missing_are_not_scored():
    for code, n in (("PHQ-9", 9), ("GAD-7", 7)):
        s = score(code, [2] * (n - 1) + [None])
        assert (s.total, s.band, s.prorated) == (None, None, False)


def test_core10_one_missing_item_is_prorated_and_two_are_not_scored():
    answers = [3, 1, 1, 3, 3, 0, 3, 3, 3, None]  # reversed 2 and 3 count 3 each
    s = score("CORE-10", answers)
    assert s.prorated and s.total == round((3 + 3 + 3 + 3 + 3 + 0 + 3 + 3 + 3) * 10 / 9, 2)
    assert s.total == 26.67 and s.band == "severe"
    assert score("CORE-10", [3, 1, 1, 3, 3, 0, 3, 3, None, None]).total is None


def test_wsas_work_not_applicable_takes_the_mean_of_the_others():
    s = score("WSAS", [None, 4, 6, 2, 4])
    assert s.prorated and s.total == 20.0 and s.band == "significant impairment"
    s = score("WSAS", [None, 5, 5, 5, 6])
    assert s.total == 26.25 and s.band == "moderately severe or worse"
    assert score("WSAS", [None, None, 6, 2, 4]).total is None


def test_answer_errors_name_each_item():
    assert answer_errors("PHQ-9", [0] * 9) == {}
    errors = answer_errors("PHQ-9", [0, 4, -1, 0, "x", 0, 0, None])
    assert errors == {
        2: "must be between 0 and 3",
        3: "must be between 0 and 3",
        5: "must be a whole number",
        8: "missing: please answer this question",
        9: "missing: please answer this question",
    }
    assert answer_errors("GAD-7", [0] * 8) == {8: "GAD-7 has only 7 items"}
    assert answer_errors("PHQ-9", [True] + [0] * 8) == {1: "must be a whole number"}


def test_one_rule_for_every_way_of_answering_what_cannot_be_scored_is_refused():
    # PHQ-9 and GAD-7: no item may be missing (no published pro-rating)
    assert answer_errors("PHQ-9", [1] * 8 + [None]) == {9: "missing: please answer this question"}
    assert answer_errors("GAD-7", [None] * 7) == dict.fromkeys(
        range(1, 8), "missing: please answer this question"
    )
    # WSAS and CORE-10: one missing item is scored (mean substitution / pro-rating), two are not
    assert answer_errors("WSAS", [None, 1, 1, 1, 1]) == {}
    assert answer_errors("WSAS", [1, None, 1, 1, 1]) == {}
    assert answer_errors("WSAS", [None, None, 1, 1, 1]) == {
        2: "missing: please answer this question"
    }
    assert answer_errors("CORE-10", [1] * 9 + [None]) == {}
    assert answer_errors("CORE-10", [None, 1, None] + [1] * 7) == {
        1: "missing: please answer this question",
        3: "missing: please answer this question",
    }


def test_risk_items():
    assert risk_items("PHQ-9", [0] * 9) == []
    assert risk_items("PHQ-9", [0] * 8 + [1]) == [(9, 1)]
    assert risk_items("CORE-10", [0] * 5 + [2] + [0] * 4) == [(6, 2)]
    # an unanswered risk item never passes silently
    assert risk_items("CORE-10", [0] * 5 + [None] + [0] * 4) == [(6, None)]
    assert risk_items("PHQ-9", [3] * 8 + [None]) == [(9, None)]
    assert risk_items("GAD-7", [3] * 7) == [] and risk_items("WSAS", [8] * 5) == []
