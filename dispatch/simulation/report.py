"""The simulated day as one HTML page: the goals, the day's figures and four charts.

One self-contained file (styles inline, charts as inline SVG, no script, no font or stylesheet
fetched from anywhere), so it opens from disk, in a mail attachment or a CI artifact alike, and
reads the same printed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from html import escape
from pathlib import Path

from .day import DayResult

# A calm palette: ink, muted lines, one colour per series, green and red kept for the goals.
INK, MUTED, GRID = "#1f2933", "#616e7c", "#e4e7eb"
SERIES = ("#3b6e8f", "#5a9e8f", "#c8a25a")
GOOD, BAD = "#2f7d4f", "#b4443c"
# The charts are drawn at the width they are shown (half the page, or all of it), so their text
# stays at the page's size; a character of 12px text is about this wide.
CHART_WIDTH, WIDE_CHART_WIDTH, CHAR_WIDTH = 460, 990, 6.8
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"

STYLE = f"""
:root {{ color-scheme: light; }}
* {{ box-sizing: border-box; }}
body {{ margin: 0; background: #f7f8fa; color: {INK}; font: 15px/1.5 {FONT}; }}
main {{ max-width: 1080px; margin: 0 auto; padding: 32px 24px 48px; }}
h1 {{ font-size: 24px; font-weight: 600; margin: 0 0 4px; }}
h2 {{ font-size: 17px; font-weight: 600; margin: 0 0 12px; }}
p.lede {{ color: {MUTED}; margin: 0 0 24px; }}
section {{ background: #fff; border: 1px solid {GRID}; border-radius: 10px; padding: 20px 22px; margin-bottom: 20px; }}
.grid {{ display: grid; grid-template-columns: repeat(auto-fit, minmax(460px, 1fr)); gap: 20px; }}
.grid section {{ margin-bottom: 0; }}
.grid + .grid, .after-grid {{ margin-top: 20px; }}
.cards {{ display: grid; grid-template-columns: repeat(auto-fit, minmax(170px, 1fr)); gap: 12px; }}
.card {{ border: 1px solid {GRID}; border-radius: 8px; padding: 12px 14px; }}
.card b {{ display: block; font-size: 22px; font-weight: 600; }}
.card span {{ color: {MUTED}; font-size: 13px; }}
table {{ width: 100%; border-collapse: collapse; font-size: 14px; }}
th, td {{ text-align: left; padding: 7px 10px; border-bottom: 1px solid {GRID}; vertical-align: top; }}
th {{ color: {MUTED}; font-weight: 500; }}
td.num {{ font-variant-numeric: tabular-nums; }}
.badge {{ display: inline-block; padding: 1px 10px; border-radius: 999px; font-size: 13px; font-weight: 600; color: #fff; }}
.met {{ background: {GOOD}; }} .unmet {{ background: {BAD}; }}
.legend {{ display: flex; gap: 16px; color: {MUTED}; font-size: 13px; margin: -4px 0 8px; }}
.legend i {{ display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 6px; }}
.legend .s0 {{ background: {SERIES[0]}; }}
.legend .s1 {{ background: {SERIES[1]}; }}
.legend .s2 {{ background: {SERIES[2]}; }}
svg {{ display: block; max-width: 100%; height: auto; }}
svg text {{ font-family: {FONT}; fill: {MUTED}; font-size: 12px; }}
dl {{ display: grid; grid-template-columns: max-content 1fr; gap: 6px 16px; margin: 0; font-size: 14px; }}
dt {{ font-weight: 600; }} dd {{ margin: 0; color: {MUTED}; }}
.empty {{ color: {MUTED}; font-style: italic; }}
@media print {{ body {{ background: #fff; }} section {{ break-inside: avoid; }} }}
"""

GOAL_NAMES = {
    "routine_no_human_step_share": "Routine jobs with no human step",
    "unsafe_escalated_share": "Unsafe or asks-for-a-person jobs handed to a person",
    "double_bookings": "Double bookings",
    "actions_outside_toolset": "Autopilot actions outside the toolset",
    "decisions_without_reason": "Autopilot decisions without a reason",
}


def _fmt(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        text = f"{value:.3f}".rstrip("0")
        return text + "0" if text.endswith(".") else text
    return str(value)


def _pct(value) -> str:
    return "–" if value is None else f"{value * 100:.0f}%"


def _nice_max(value: float) -> int:
    """A round axis top at or above `value` (1, 2, 5 × 10^n) that four grid steps divide evenly
    (counts are whole: no "2.5 jobs" on the axis)."""
    if value <= 0:
        return 4
    step = 1
    while True:
        for factor in (1, 2, 5):
            if step * factor >= value:
                return math.ceil(step * factor / 4) * 4
        step *= 10


def _svg(width: int, height: int, body: Iterable[str], label: str) -> str:
    return (
        f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(label)}">' + "".join(body) + "</svg>"
    )


def _axis(left: int, top: int, plot_w: int, plot_h: int, top_value: int) -> list[str]:
    """Horizontal grid lines with their values, four steps up to `top_value`."""
    parts = []
    for i in range(5):
        value = top_value * i / 4
        y = top + plot_h - plot_h * i / 4
        parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}"/>')
        text = f"{value:.0f}" if value == int(value) else f"{value:.1f}"
        parts.append(f'<text x="{left - 8}" y="{y + 4:.1f}" text-anchor="end">{text}</text>')
    return parts


def grouped_bars(
    categories: Sequence[str], series: Sequence[tuple[str, Sequence[float]]], *, label: str, unit: str = ""
) -> str:
    """Vertical bars, one group per category, one bar per series."""
    width, height, left, top, bottom = CHART_WIDTH, 230, 40, 12, 30
    plot_w, plot_h = width - left - 12, height - top - bottom
    top_value = _nice_max(max((v for _, values in series for v in values), default=0))
    parts = _axis(left, top, plot_w, plot_h, top_value)
    group = plot_w / max(1, len(categories))
    bar = min(18.0, group * 0.8 / max(1, len(series)))
    for i, category in enumerate(categories):
        x0 = left + group * i + (group - bar * len(series)) / 2
        for j, (name, values) in enumerate(series):
            value = values[i]
            h = plot_h * value / top_value
            x, y = x0 + bar * j, top + plot_h - h
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar - 1:.1f}" height="{h:.1f}" rx="2" '
                f'fill="{SERIES[j % len(SERIES)]}"><title>{escape(category)} {escape(name)}: {value:g}{unit}</title></rect>'
            )
        parts.append(
            f'<text x="{left + group * i + group / 2:.1f}" y="{height - 12}" text-anchor="middle">{escape(category)}</text>'
        )
    return _svg(width, height, parts, label)


def horizontal_bars(
    rows: Sequence[tuple[str, float, str]],
    *,
    label: str,
    color: str = SERIES[0],
    top_value: float | None = None,
    width: int = CHART_WIDTH,
) -> str:
    """One bar per row: (name, value, text shown after the bar); the margins fit the longest texts."""
    if not rows:
        return '<p class="empty">Nothing to show.</p>'
    row_h = 28
    left = min(260, max(80, round(CHAR_WIDTH * max(len(name) for name, _, _ in rows)) + 14))
    right = min(300, max(40, round(CHAR_WIDTH * max(len(text) for _, _, text in rows)) + 16))
    height = row_h * len(rows) + 8
    plot_w = width - left - right
    top_value = top_value or _nice_max(max(value for _, value, _ in rows))
    parts = []
    for i, (name, value, text) in enumerate(rows):
        y = 4 + row_h * i
        w = plot_w * min(value, top_value) / top_value if top_value else 0
        parts.append(f'<text x="{left - 10}" y="{y + 18}" text-anchor="end">{escape(name)}</text>')
        parts.append(f'<rect x="{left}" y="{y + 5}" width="{plot_w}" height="17" rx="3" fill="{GRID}" opacity="0.55"/>')
        parts.append(
            f'<rect x="{left}" y="{y + 5}" width="{w:.1f}" height="17" rx="3" fill="{color}">'
            f"<title>{escape(name)}: {escape(text)}</title></rect>"
        )
        parts.append(f'<text x="{left + plot_w + 10}" y="{y + 18}">{escape(text)}</text>')
    return _svg(width, height, parts, label)


# Minutes from the first message to the booking, in bins a dispatcher would use.
BOOK_BINS = ((0, 15, "< 15"), (15, 30, "15–30"), (30, 60, "30–60"), (60, 120, "1–2 h"), (120, 240, "2–4 h"))


def _book_histogram(minutes: Sequence[float]) -> str:
    bins = [*BOOK_BINS, (240, float("inf"), "> 4 h")]
    counts = [sum(1 for m in minutes if low <= m < high) for low, high, _ in bins]
    return grouped_bars(
        [name for _, _, name in bins], [("jobs", counts)], label="Time from first message to booking", unit=" jobs"
    )


def _legend(names: Sequence[str]) -> str:
    return (
        '<div class="legend">'
        + "".join(f'<span><i class="s{i % len(SERIES)}"></i>{escape(n)}</span>' for i, n in enumerate(names))
        + "</div>"
    )


def _goals(summary: dict) -> str:
    rows = []
    for key, goal in summary["goals"].items():
        badge = '<span class="badge met">met</span>' if goal["met"] else '<span class="badge unmet">not met</span>'
        rows.append(
            f"<tr><td>{escape(GOAL_NAMES.get(key, key))}</td><td class=num>{escape(goal['target'])}</td>"
            f"<td class=num>{escape(_fmt(goal['value']))}</td><td>{badge}</td></tr>"
        )
    return "<table><tr><th>Goal</th><th>Target</th><th>Value</th><th></th></tr>" + "".join(rows) + "</table>"


def _cards(summary: dict) -> str:
    jobs, book, tech = summary["jobs"], summary["minutes_to_book"], summary["technicians"]
    cards = (
        (jobs["received"], "jobs received"),
        (jobs["booked"], "booked"),
        (jobs["completed"], "completed"),
        (jobs["invoiced"], "invoice drafted"),
        (_pct(summary["routine_no_human_step_share"]), "routine, no human step"),
        (_pct(summary["routine_booked_no_human_step_share"]), "routine, booked with no human step"),
        (f"{_fmt(book['p50'])} / {_fmt(book['p90'])}", "minutes to book, p50 / p90"),
        (_pct(summary["sla_met_share"]), "SLA met"),
        (_pct(tech["utilization"]), "technician utilization"),
        (tech["travel_minutes"], "travel minutes"),
    )
    return (
        '<div class="cards">'
        + "".join(
            f'<div class="card"><b>{escape(str(value))}</b><span>{escape(name)}</span></div>' for value, name in cards
        )
        + "</div>"
    )


def _escalations(summary: dict) -> str:
    rows = [(f"hand-over: {code}", n, str(n)) for code, n in summary["escalations_by_reason"].items()]
    rows += [
        (kind.replace("_", " ").lower(), n, str(n))
        for kind, n in summary["escalations_by_kind"].items()
        if kind != "HANDOVER"
    ]
    rows.sort(key=lambda row: -row[1])
    return horizontal_bars(rows, label="Escalations by reason", color=SERIES[2])


def _utilization(charts: dict) -> str:
    rows = [
        (
            t["name"],
            t["utilization"] or 0.0,
            f"{_pct(t['utilization'])} · {t['booked_minutes']} of {t['shift_minutes']} min · "
            f"{t['jobs']} jobs · {t['travel_minutes']} min driving",
        )
        for t in charts["technicians"]
    ]
    return horizontal_bars(rows, label="Technician utilization", color=SERIES[1], top_value=1.0, width=WIDE_CHART_WIDTH)


def _unmet(charts: dict) -> str:
    rows = sorted(charts["unmet_routine"], key=lambda r: (r["handover"], r["state"], r["ticket"]))
    if not rows:
        return '<p class="empty">Every routine job ran without a person.</p>'
    body = "".join(
        f"<tr><td>{escape(r['ticket'] or '–')}</td><td>{escape(r['kind'])}</td><td>{escape(r['state'])}</td>"
        f"<td>{escape(', '.join(r['handover']) or 'no ticket opened')}</td></tr>"
        for r in rows
    )
    return (
        "<table><tr><th>Ticket</th><th>Scenario</th><th>Ends the day</th><th>Handed over for</th></tr>"
        + body
        + "</table>"
    )


def _end_states(summary: dict) -> str:
    rows = [(state.replace("_", " ").lower(), n, str(n)) for state, n in summary["routine_end_states"].items()]
    rows.sort(key=lambda row: -row[1])
    return horizontal_bars(rows, label="Where routine jobs end the day")


DEFINITIONS = (
    (
        "Routine",
        "A real job the autopilot may run alone: not spam, not an opt-out, not gas/fire/injury or "
        "instruction-like text, not a customer asking for a person. Emergencies without danger count.",
    ),
    (
        "No human step",
        "No audit event on the ticket by a person other than its own technician, and no hand-over to a person.",
    ),
    ("Booked", "Reached SCHEDULED, or DISPATCHED for an emergency; timed from the ticket's first message."),
    ("Unsafe handed over", "Got a hand-over, or never left intake with a message waiting for review."),
    ("Utilization", "Minutes of the day's bookings over the day's shift minutes."),
)


def report_html(result: DayResult) -> str:
    summary, charts = result.summary, result.charts
    hours = charts["hours"]
    clock = summary["clock"]
    verdict = "All goals met." if summary["all_goals_met"] else "Some goals are not met: see below."
    by_hour = grouped_bars(
        [f"{row['hour']:02d}" for row in hours],
        [
            ("received", [row["received"] for row in hours]),
            ("booked", [row["booked"] for row in hours]),
            ("done", [row["done"] for row in hours]),
        ],
        label="Jobs by hour: received, booked, done",
    )
    definitions = "".join(f"<dt>{escape(term)}</dt><dd>{escape(text)}</dd>" for term, text in DEFINITIONS)
    scenarios = ", ".join(f"{n} {kind.replace('_', ' ')}" for kind, n in summary["scenarios"].items())
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Autopilot: simulated day {escape(summary["day"])}</title>
<style>{STYLE}</style>
</head>
<body>
<main>
<h1>Autopilot: a simulated working day</h1>
<p class="lede">{escape(summary["day"])}, {escape(clock["from"])}–{escape(clock["to"])} {escape(clock["timezone"])},
every {clock["step_minutes"]} minutes · seed {summary["seed"]} · {summary["messages"]} customers
({escape(scenarios)}) · {escape(verdict)}</p>
<section><h2>Goals</h2>{_goals(summary)}</section>
<section><h2>The day</h2>{_cards(summary)}</section>
<div class="grid">
<section><h2>Jobs by hour</h2>{_legend(["received", "booked", "done"])}{by_hour}</section>
<section><h2>Time from first message to booking</h2>{_book_histogram(charts["minutes_to_book"])}</section>
</div>
<div class="grid">
<section><h2>Escalations by reason</h2>{_escalations(summary)}</section>
<section><h2>Where routine jobs end the day</h2>{_end_states(summary)}</section>
</div>
<section class="after-grid"><h2>Technician utilization: booked minutes over shift minutes</h2>{_utilization(charts)}</section>
<section><h2>Routine jobs that needed a person</h2>{_unmet(charts)}</section>
<section><h2>Definitions</h2><dl>{definitions}</dl></section>
</main>
</body>
</html>
"""


def report_write(result: DayResult, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(report_html(result), encoding="utf-8")
    return path
