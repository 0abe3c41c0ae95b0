"""The inline SVG drawings, pure: data in, markup out."""

import re

from services.measures.domain import INSTRUMENTS
from services.measures.queries.staff import describe
from services.portal.charts import (
    closeness_circle,
    rate_chart,
    scale_from,
    scales_from,
    score_chart,
)

# what measures' GET /instruments answers: the portal's only source of bands and caseness
SCALES = scales_from({"instruments": [describe(i) for i in INSTRUMENTS.values()]})


def given_points(totals):
    return [
        {"total": t, "at": f"2026-10-{i + 1:02d}T09:00:00+00:00", "short": str(i + 1)}
        for i, t in enumerate(totals)
    ]


def chart(code, points):
    return score_chart(code, points, scale=SCALES.get(code))


def test_score_chart_draws_one_point_per_scored_questionnaire_and_skips_unscored():
    svg = chart("PHQ-9", given_points([17, None, 12, 6]))
    assert svg.count("<circle") == 3
    assert "PHQ-9 totals over 3 questionnaires" in svg


def test_the_caseness_line_sits_at_its_threshold():
    # PHQ-9: 27 points over a 214-pixel-high plot (260 - 12 top - 34 bottom), from y=226 at 0.
    svg = chart("PHQ-9", given_points([17, 6]))
    line = re.search(r'<line x1="44" y1="([\d.]+)"[^>]*stroke="#8a1c1c"', svg)
    assert line and abs(float(line.group(1)) - (12 + 214 - 10 / 27 * 214)) < 0.2
    assert "caseness 10" in svg
    assert "clinical cut-off 11" in chart("CORE-10", given_points([20]))
    # clinical.md gives WSAS bands but no caseness: measures and the chart agree on no line
    assert "#8a1c1c" not in chart("WSAS", given_points([20]))


def test_every_severity_band_is_drawn_and_labelled():
    svg = chart("GAD-7", given_points([9]))
    for label in ("minimal 0–4", "mild 5–9", "moderate 10–14", "severe 15–21"):
        assert label in svg
    core10 = " ".join(t for _, t in _text_lines(chart("CORE-10", given_points([22]))))
    assert "moderate-to-severe 20–24" in core10  # measures' spelling, from clinical.md
    assert score_chart("unknown", given_points([1])) == ""  # no scale from measures: no chart


def test_closeness_circle_places_each_person_on_their_ring_and_marks_the_unilateral_partner():
    inventory = [
        {"name": "Mark", "relationship": "husband", "closeness": 1, "unilateral_partner": True},
        {"name": "Jo", "relationship": "sister", "closeness": 2, "unilateral_partner": False},
        {"name": "Ann", "relationship": "colleague", "closeness": 3, "unilateral_partner": False},
    ]
    svg = closeness_circle(inventory, "Emma", size=420)
    assert svg.count("<g>") == 3 and "Mark ◆" in svg and "partner seen unilaterally" in svg
    centre = 210
    radii = {}
    for name in ("Mark", "Jo", "Ann"):
        g = re.search(rf'<g><title>{name} [^<]*</title><circle cx="([\d.]+)" cy="([\d.]+)"', svg)
        x, y = float(g.group(1)), float(g.group(2))
        radii[name] = ((x - centre) ** 2 + (y - centre) ** 2) ** 0.5
    assert radii["Mark"] < 420 * 0.17 < radii["Jo"] < 420 * 0.31 < radii["Ann"] < 420 * 0.45


def test_names_are_escaped():
    svg = closeness_circle([{"name": "<img src=x>", "relationship": "&", "closeness": 2}])
    assert "<img" not in svg and "&lt;img src=x&gt;" in svg


WSAS_DESCRIBED = {
    "code": "WSAS",
    "total_range": [0, 40],
    "caseness": 10,
    "bands": [
        {"from": 0, "above": False, "label": "subclinical"},
        {"from": 10, "above": False, "label": "significant impairment"},
        {"from": 20, "above": True, "label": "moderately severe or worse"},
    ],
}


def _text_lines(svg: str) -> list[tuple[float, str]]:
    found = re.findall(r'<tspan x="([\d.]+)"[^>]*>([^<]*)</tspan>', svg)
    found += re.findall(
        r'<text x="([\d.]+)" y="[\d.]+" font-size="11" fill="#333">([^<]*)</text>', svg
    )
    return [(float(x), t) for x, t in found]


def test_every_band_label_fits_inside_the_chart():
    # defect 9 (issue 13): "moderately severe or worse 21–40" ran past the right edge
    for svg in (
        chart("WSAS", given_points([25])),
        score_chart("WSAS", given_points([25]), scale=scale_from(WSAS_DESCRIBED)),
        chart("CORE-10", given_points([22])),
    ):
        lines = _text_lines(svg)
        assert lines, "band labels are drawn"
        for x, text in lines:
            assert x + len(text) * 6.5 <= 640, f"cut off: {text!r} at x={x}"
    words = " ".join(t for _, t in _text_lines(chart("WSAS", given_points([25]))))
    assert "moderately severe or worse 21–40" in words


def test_bands_come_from_the_instruments_measures_describes():
    scale = scale_from(WSAS_DESCRIBED)
    assert scale.bands == (
        (0, 9, "subclinical"),
        (10, 20, "significant impairment"),
        (21, 40, "moderately severe or worse"),
    )
    assert scale.caseness == 10 and scale.caseness_label == "caseness 10"
    described = {**WSAS_DESCRIBED, "caseness_label": "clinical cut-off"}
    assert scale_from(described).caseness_label == "clinical cut-off 10"
    assert scale_from({"code": "X"}) is None


def test_rate_chart_has_a_title_one_line_per_group_and_the_national_line():
    svg = rate_chart(
        "Recovery by therapist",
        ["2026-09", "2026-10", "2026-11"],
        [("Dr Sarah Okafor", [0.5, None, 0.75]), ("Mr Tom Reid", [1.0, 0.5, 0.0])],
        national=0.51,
    )
    assert "<title>Recovery by therapist</title>" in svg and 'role="img"' in svg
    assert svg.count("<polyline") == 2 and "national 51%" in svg
    assert "Dr Sarah Okafor, 2026-11: 75%" in svg and "Mr Tom Reid, 2026-10: 50%" in svg
