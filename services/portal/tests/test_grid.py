"""The diary grid's layout (pure): rows in practice time across the clock change, free hours,
leave, and the now line."""

from datetime import UTC, date, datetime

from services.portal.pages import grid

HOURS = [{"weekday": d, "start": "09:00", "end": "17:00"} for d in range(5)]
ANN = {"therapist_id": "t-1", "name": "Ann", "weekly_hours": HOURS, "exceptions": []}


def _session(starts_utc: str, ends_utc: str, **extra) -> dict:
    return {
        "session_id": "s",
        "starts_at": starts_utc,
        "ends_at": ends_utc,
        "status": "booked",
        **extra,
    }


def test_a_summer_session_sits_at_its_london_time():
    summer = date(2030, 7, 1)  # BST: 10:00 in London is 09:00 UTC
    layout = grid.build(
        [ANN],
        {"t-1": [_session("2030-07-01T09:00:00+00:00", "2030-07-01T09:50:00+00:00")]},
        [summer],
        now=datetime(2030, 6, 1, tzinfo=UTC),
    )
    [block] = [b for b in layout.columns[0].blocks if b.kind == "session"]
    assert (layout.first_hour, block.start, block.end) == (8, 12, 17)


def test_free_hours_skip_the_booked_hour_and_the_past_and_leave_has_none():
    day = date(2030, 1, 7)
    booked = {"t-1": [_session("2030-01-07T10:00:00+00:00", "2030-01-07T10:50:00+00:00")]}
    noon = datetime(2030, 1, 7, 12, 5, tzinfo=UTC)
    layout = grid.build([ANN], booked, [day], now=noon)
    free = [b.starts_at.strftime("%H:%M") for b in layout.columns[0].blocks if b.kind == "free"]
    assert free == ["13:00", "14:00", "15:00", "16:00"]
    [now] = [b for b in layout.columns[0].blocks if b.kind == "now"]
    assert (now.start, now.label) == (24, "12:05")  # 12:00 is row 24 from 08:00
    away = {
        **ANN,
        "exceptions": [
            {"start_date": "2030-01-07", "end_date": "2030-01-07", "reason": "Training"}
        ],
    }
    layout = grid.build([away], {}, [day], now=datetime(2030, 1, 1, tzinfo=UTC))
    kinds = [b.kind for b in layout.columns[0].blocks]
    assert kinds == ["leave"] and layout.columns[0].blocks[0].label == "Training"


def test_an_evening_session_widens_the_grid_and_weekends_show_only_when_used():
    late = _session("2030-01-08T19:00:00+00:00", "2030-01-08T19:50:00+00:00")
    days = grid.days_shown(date(2030, 1, 7), 7, [ANN], [late])
    assert [d.isoformat() for d in days] == [f"2030-01-{d:02d}" for d in range(7, 12)]
    layout = grid.build([ANN], {"t-1": [late]}, days, now=datetime(2030, 1, 1, tzinfo=UTC))
    assert (layout.first_hour, layout.last_hour, layout.rows) == (8, 20, 72)


def test_the_now_line_shows_from_the_grids_first_ten_minutes_to_its_last():
    """Today's line is drawn while now is on the grid: its first row (08:00-08:09) too, and
    neither before the grid starts nor once it has ended."""
    day = date(2030, 1, 7)

    def now_lines(hh: int, mm: int) -> list:
        layout = grid.build([ANN], {}, [day], now=datetime(2030, 1, 7, hh, mm, tzinfo=UTC))
        assert (layout.first_hour, layout.rows) == (8, 60)  # 08:00 to 18:00, ten minutes a row
        return [(b.start, b.label) for b in layout.columns[0].blocks if b.kind == "now"]

    assert now_lines(7, 55) == []
    assert now_lines(8, 3) == [(0, "08:03")]
    assert now_lines(17, 59) == [(59, "17:59")]
    assert now_lines(18, 0) == []
