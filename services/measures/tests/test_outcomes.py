"""NHS Talking Therapies outcome rules on worked cases (pure)."""

from datetime import UTC, datetime, timedelta

from services.measures.domain.outcomes import Measure, course_outcome, summarise

T0 = datetime(2026, 1, 5, 9, tzinfo=UTC)


def measures(*pairs):
    return [Measure(T0 + timedelta(weeks=i), phq, gad) for i, (phq, gad) in enumerate(pairs)]


def test_recovered_and_reliably_improved():
    o = course_outcome(measures((16, 12), (12, 9), (6, 5)), attended_sessions=16)
    assert o["phq9"] == {"first": 16, "last": 6, "change": -10}
    assert o["gad7"] == {"first": 12, "last": 5, "change": -7}
    assert o["caseness_at_start"] and o["finished_treatment"]
    assert o["recovered"] and o["reliable_improvement"] and o["reliable_recovery"]
    assert o["reliable_deterioration"] is False


def test_improved_but_not_recovered():
    # PHQ-9 down 7 (reliable), still a case at the end (PHQ-9 12 >= 10)
    o = course_outcome(measures((19, 9), (12, 7)), attended_sessions=8)
    assert o["reliable_improvement"] is True
    assert o["recovered"] is False and o["reliable_recovery"] is False


def test_recovered_without_reliable_improvement():
    # just over the line to just under it: recovery, but a change too small to be reliable
    o = course_outcome(measures((11, 8), (9, 7)), attended_sessions=6)
    assert o["recovered"] is True and o["reliable_improvement"] is False
    assert o["reliable_recovery"] is False


def test_deteriorated():
    o = course_outcome(measures((10, 6), (17, 7)), attended_sessions=5)
    assert o["reliable_deterioration"] is True and o["reliable_improvement"] is False
    assert o["recovered"] is False


def test_mixed_reliable_change_is_neither_improvement_nor_deterioration():
    # PHQ-9 reliably down, GAD-7 reliably up
    o = course_outcome(measures((18, 6), (10, 11)), attended_sessions=10)
    assert o["reliable_improvement"] is False and o["reliable_deterioration"] is False


def test_not_a_case_at_the_start_has_no_recovery():
    o = course_outcome(measures((8, 7), (2, 2)), attended_sessions=12)
    assert o["caseness_at_start"] is False
    assert o["recovered"] is None and o["reliable_recovery"] is None
    assert o["reliable_improvement"] is True  # PHQ-9 down 6


def test_a_single_measure_only():
    o = course_outcome(measures((15, 10)), attended_sessions=1)
    assert o["caseness_at_start"] is True and o["finished_treatment"] is False
    assert o["phq9"] == {"first": 15, "last": None, "change": None}
    assert all(
        o[k] is None
        for k in (
            "recovered",
            "reliable_improvement",
            "reliable_deterioration",
            "reliable_recovery",
        )
    )


def test_measures_without_both_scales_do_not_pair():
    o = course_outcome(
        [
            Measure(T0, 15, None),
            Measure(T0 + timedelta(days=7), 14, 9),
            Measure(T0 + timedelta(days=14), 5, None),
        ],
        attended_sessions=3,
    )
    assert o["phq9"]["first"] == 14 and o["phq9"]["last"] is None


def test_order_is_by_time_not_arrival():
    late, early = Measure(T0 + timedelta(days=30), 4, 3), Measure(T0, 20, 15)
    assert course_outcome([late, early], 4)["phq9"] == {"first": 20, "last": 4, "change": -16}


def test_rates_use_the_nhs_tt_denominators():
    recovered = course_outcome(measures((16, 12), (6, 5)), 16)
    improved = course_outcome(measures((19, 9), (12, 7)), 8)
    not_case = course_outcome(measures((8, 7), (7, 7)), 12)
    unfinished = course_outcome(measures((20, 15), (3, 2)), 1)
    single = course_outcome(measures((15, 10)), 4)
    s = summarise([recovered, improved, not_case, unfinished, single])
    assert s["courses"] == 5 and s["finished_with_paired_scores"] == 3
    assert s["recovery"] == {"count": 1, "of": 2, "rate": 0.5}
    assert s["reliable_recovery"] == {"count": 1, "of": 2, "rate": 0.5}
    assert s["reliable_improvement"] == {"count": 2, "of": 3, "rate": 0.6667}
    assert s["reliable_deterioration"] == {"count": 0, "of": 3, "rate": 0.0}
    assert summarise([])["recovery"] == {"count": 0, "of": 0, "rate": None}
