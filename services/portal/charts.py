"""Inline SVG drawn on the server (no JavaScript library, no CDN; CSP allows no inline
styles, so only presentation attributes are used). Pure functions: data in, markup out.

- `closeness_circle`: the IPT interpersonal inventory as three rings (inner, middle, outer)
  with each person on their ring; the partner worked with unilaterally is marked.
- `score_chart`: one instrument's totals over the course, over its severity bands, with the
  caseness line. Bands, caseness and their labels come only from measures' `GET /instruments`
  (`scale_from`), where each instrument is stated once (measures' domain/instruments.py,
  citing /shared/clinical.md); when measures cannot be asked there is no chart (the page
  still lists the scores).
- `rate_chart`: an outcome rate month by month, one line per therapist or problem area, with
  the national comparator; the page puts the same figures in a table beside it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from markupsafe import Markup, escape


@dataclass(frozen=True)
class Scale:
    maximum: int
    bands: tuple  # (low, high, label) inclusive
    caseness: float | None
    caseness_label: str = ""


def scale_from(described: dict) -> Scale | None:
    """A Scale from one instrument as measures' `GET /instruments` describes it: each band
    starts at `from` (strictly above it when `above`, WSAS "> 20") and ends where the next
    one starts; totals are whole numbers except pro-rated ones, drawn where they fall."""
    try:
        maximum = int(described["total_range"][1])
        starts = [int(b["from"]) + (1 if b.get("above") else 0) for b in described["bands"]]
        labels = [str(b["label"]) for b in described["bands"]]
    except (KeyError, TypeError, ValueError, IndexError):
        return None
    if not starts:
        return None
    ends = [nxt - 1 for nxt in starts[1:]] + [maximum]
    caseness = described.get("caseness")
    label = described.get("caseness_label") or "caseness"
    return Scale(
        maximum,
        tuple(zip(starts, ends, labels, strict=True)),
        caseness,
        f"{label} {caseness:g}" if caseness is not None else "",
    )


def scales_from(instruments_answer) -> dict[str, Scale]:
    """{code: Scale} from `GET /instruments` (empty when measures could not be asked)."""
    out: dict[str, Scale] = {}
    for described in (instruments_answer or {}).get("instruments") or []:
        scale = scale_from(described)
        if scale is not None:
            out[described["code"]] = scale
    return out


LABEL_CHARS = 21  # what fits in the 150-pixel right margin at 11 px (about 6.5 px a character)


def wrap(text: str, width: int = LABEL_CHARS) -> list[str]:
    """Words into lines of at most `width` characters (a longer single word stays whole)."""
    lines: list[str] = []
    for word in text.split():
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines or [""]


# Light tints from calm to warm; text on them stays dark for contrast.
BAND_FILLS = ("#eef6ee", "#f4f7e6", "#fbf3e0", "#fbe8dc", "#f8dede", "#f3d6d6")
RING_NAMES = ("inner", "middle", "outer")


def score_chart(
    instrument: str,
    points: list[dict],
    width: int = 640,
    height: int = 260,
    scale: Scale | None = None,
) -> Markup:
    """`points`: [{"total": float|None, "at": datetime|str, "label": str}] in time order;
    `scale` from `scales_from` (no scale, no chart)."""
    if scale is None:
        return Markup("")
    left, right, top, bottom = 44, 150, 12, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    y = lambda v: top + plot_h - (v / scale.maximum) * plot_h  # noqa: E731
    scored = [p for p in points if p.get("total") is not None]
    n = max(len(scored), 2)
    x = lambda i: left + (i / (n - 1)) * plot_w  # noqa: E731
    title = f"{instrument} totals over {len(scored)} questionnaires"
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    for i, (low, high, label) in enumerate(scale.bands):
        y_top, y_bottom = y(high + (1 if high < scale.maximum else 0)), y(low)
        y_top = max(y_top, top)
        parts.append(
            f'<rect x="{left}" y="{y_top:.1f}" width="{plot_w}" height="{y_bottom - y_top:.1f}" '
            f'fill="{BAND_FILLS[i % len(BAND_FILLS)]}"/>'
        )
        # wrapped into the right margin (one line did not fit: "moderately severe or worse 21–40")
        lines = wrap(f"{label} {low}–{high}")
        first_y = (y_top + y_bottom) / 2 + 4 - (len(lines) - 1) * 6
        spans = "".join(
            f'<tspan x="{left + plot_w + 6}" y="{first_y + n * 12:.1f}">{escape(line)}</tspan>'
            for n, line in enumerate(lines)
        )
        parts.append(f'<text font-size="11" fill="#333">{spans}</text>')
    for tick in range(0, scale.maximum + 1, 5 if scale.maximum < 30 else 10):
        parts.append(
            f'<text x="{left - 6}" y="{y(tick) + 4:.1f}" font-size="11" text-anchor="end" '
            f'fill="#333">{tick}</text>'
        )
    parts.append(
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" '
        f'stroke="#555"/>'
    )
    if scale.caseness is not None:
        cy = y(scale.caseness)
        parts.append(
            f'<line x1="{left}" y1="{cy:.1f}" x2="{left + plot_w}" y2="{cy:.1f}" stroke="#8a1c1c" '
            f'stroke-width="1.5" stroke-dasharray="6 4"/>'
        )
        parts.append(
            f'<text x="{left + 4}" y="{cy - 4:.1f}" font-size="11" fill="#8a1c1c">'
            f"{escape(scale.caseness_label)}</text>"
        )
    coords = [(x(i), y(p["total"])) for i, p in enumerate(scored)]
    if len(coords) > 1:
        path = " ".join(f"{cx:.1f},{cy:.1f}" for cx, cy in coords)
        parts.append(f'<polyline points="{path}" fill="none" stroke="#1d4f7a" stroke-width="2"/>')
    for (cx, cy), p in zip(coords, scored, strict=True):
        label = f"{p.get('label') or _when(p.get('at'))}: {_fmt(p['total'])}"
        parts.append(
            f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="4" fill="#1d4f7a">'
            f"<title>{escape(label)}</title></circle>"
        )
    labels = [p.get("short") or str(i + 1) for i, p in enumerate(scored)]
    parts.extend(_x_labels(labels, x, height))
    parts.append("</svg>")
    return Markup("".join(parts))


def _x_labels(labels: list[str], x, height: int) -> list[str]:
    """The labels under the x axis: all of up to eight, else about eight evenly spread and
    the last, so they never overlap."""
    n = len(labels)
    return [
        f'<text x="{x(i):.1f}" y="{height - 12}" font-size="10" text-anchor="middle" '
        f'fill="#333">{escape(label)}</text>'
        for i, label in enumerate(labels)
        if n <= 8 or i % max(1, n // 8) == 0 or i == n - 1
    ]


# Lines told apart by colour *and* dash and marker, so no one depends on colour alone.
LINE_STYLES = (
    ("#1d4f7a", "", "circle"),
    ("#a64b00", "8 4", "square"),
    ("#2f6b2f", "3 3", "diamond"),
    ("#6b2f6b", "10 3 2 3", "circle"),
    ("#5a5a00", "2 2", "square"),
    ("#8a1c1c", "12 4", "diamond"),
)


def _marker(kind: str, cx: float, cy: float, colour: str, title: str) -> str:
    tip = f"<title>{escape(title)}</title>"
    if kind == "square":
        return (
            f'<rect x="{cx - 4:.1f}" y="{cy - 4:.1f}" width="8" height="8" fill="{colour}">'
            f"{tip}</rect>"
        )
    if kind == "diamond":
        pts = (
            f"{cx:.1f},{cy - 5:.1f} {cx + 5:.1f},{cy:.1f} "
            f"{cx:.1f},{cy + 5:.1f} {cx - 5:.1f},{cy:.1f}"
        )
        return f'<polygon points="{pts}" fill="{colour}">{tip}</polygon>'
    return f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="4" fill="{colour}">{tip}</circle>'


def rate_chart(
    title: str,
    months: list[str],
    series: list[tuple[str, list]],
    national: float | None = None,
    width: int = 640,
    height: int = 280,
) -> Markup:
    """`series`: [(label, [rate 0..1 or None per month])]; a month without courses is a gap.
    The national comparator (NHS Talking Therapies) is a dashed line labelled in the plot."""
    left, right, top, bottom = 44, 170, 12, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    y = lambda v: top + plot_h - v * plot_h  # noqa: E731
    n = max(len(months), 2)
    x = lambda i: left + (i / (n - 1)) * plot_w if len(months) > 1 else left + plot_w / 2  # noqa: E731
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
    ]
    for tick in (0, 0.25, 0.5, 0.75, 1):
        parts.append(
            f'<line x1="{left}" y1="{y(tick):.1f}" x2="{left + plot_w}" y2="{y(tick):.1f}" '
            f'stroke="#dde3e8"/>'
            f'<text x="{left - 6}" y="{y(tick) + 4:.1f}" font-size="11" text-anchor="end" '
            f'fill="#333">{tick * 100:.0f}%</text>'
        )
    if national is not None:
        parts.append(
            f'<line x1="{left}" y1="{y(national):.1f}" x2="{left + plot_w}" y2="{y(national):.1f}" '
            f'stroke="#555" stroke-width="1.5" stroke-dasharray="6 4"/>'
            f'<text x="{left + 4}" y="{y(national) - 4:.1f}" font-size="11" fill="#333">'
            f"national {national * 100:.0f}%</text>"
        )
    parts.extend(_x_labels(months, x, height))
    for k, (label, rates) in enumerate(series):
        colour, dash, marker = LINE_STYLES[k % len(LINE_STYLES)]
        points = [(x(i), y(r), months[i], r) for i, r in enumerate(rates) if r is not None]
        if len(points) > 1:
            path = " ".join(f"{px:.1f},{py:.1f}" for px, py, _, _ in points)
            parts.append(
                f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"'
                + (f' stroke-dasharray="{dash}"' if dash else "")
                + "/>"
            )
        for px, py, month, r in points:
            parts.append(_marker(marker, px, py, colour, f"{label}, {month}: {r * 100:.0f}%"))
        ly = top + 14 + k * 18
        parts.append(
            _marker(marker, left + plot_w + 14, ly - 4, colour, label)
            + f'<text x="{left + plot_w + 24}" y="{ly:.1f}" font-size="11" fill="#333">'
            f"{escape(wrap(label, 22)[0])}</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def closeness_circle(
    inventory: list[dict], client_label: str = "Client", size: int = 420
) -> Markup:
    """People of the interpersonal inventory on their ring (closeness 1 inner .. 3 outer)."""
    c = size / 2
    radii = (size * 0.17, size * 0.31, size * 0.45)
    title = f"Closeness circle: {len(inventory)} people in the interpersonal inventory"
    parts = [
        f'<svg class="circle" viewBox="0 0 {size} {size}" role="img" aria-label="{escape(title)}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
    ]
    for r, fill in zip(reversed(radii), ("#f7f9fb", "#eef3f7", "#e3ecf3"), strict=True):
        parts.append(f'<circle cx="{c}" cy="{c}" r="{r:.1f}" fill="{fill}" stroke="#8aa1b5"/>')
    for r, name in zip(radii, RING_NAMES, strict=True):
        parts.append(
            f'<text x="{c}" y="{c - r + 13:.1f}" font-size="10" text-anchor="middle" '
            f'fill="#4a5d6e">{name}</text>'
        )
    parts.append(
        f'<circle cx="{c}" cy="{c}" r="22" fill="#1d4f7a"/>'
        f'<text x="{c}" y="{c + 4}" font-size="11" text-anchor="middle" fill="#fff">'
        f"{escape(client_label[:10])}</text>"
    )
    by_ring: dict[int, list[dict]] = {1: [], 2: [], 3: []}
    for person in inventory:
        ring = min(max(int(person.get("closeness") or 3), 1), 3)
        by_ring[ring].append(person)
    for ring, people in by_ring.items():
        inner = radii[ring - 2] if ring > 1 else 30
        radius = (inner + radii[ring - 1]) / 2
        offset = {1: -90, 2: -60, 3: -75}[ring]
        for i, person in enumerate(people):
            angle = math.radians(offset + i * 360 / len(people))
            px, py = c + radius * math.cos(angle), c + radius * math.sin(angle)
            parts.append(_person(px, py, person))
    parts.append("</svg>")
    return Markup("".join(parts))


def _person(px: float, py: float, person: dict) -> str:
    name, relation = person.get("name", "?"), person.get("relationship", "")
    unilateral = bool(person.get("unilateral_partner"))
    label = f"{name} ({relation})" + (", partner seen unilaterally" if unilateral else "")
    dot = (
        f'<circle cx="{px:.1f}" cy="{py:.1f}" r="9" fill="#fff" stroke="#8a1c1c" stroke-width="3" '
        f'stroke-dasharray="3 2"/>'
        if unilateral
        else f'<circle cx="{px:.1f}" cy="{py:.1f}" r="7" fill="#4f7a9a"/>'
    )
    text = escape(name) + (" ◆" if unilateral else "")
    return (
        f'<g><title>{escape(label)}</title>{dot}<text x="{px:.1f}" y="{py + 20:.1f}" '
        f'font-size="11" '
        f'text-anchor="middle" fill="#1b2a36">{text}</text></g>'
    )


def _fmt(value) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"


def _when(value) -> str:
    if isinstance(value, datetime):
        return value.strftime("%d %b %Y")
    return str(value or "")[:10]
