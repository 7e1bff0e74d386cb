"""The admin index's small charts of today's numbers, drawn as inline SVG (no script, no library).

Each tag returns one <svg> sized by its viewBox and coloured by classes (dispatch-admin.css): the
page's CSP refuses style attributes, and presentation stays in the stylesheet. Every mark carries
a <title>, so hovering a bar says what it counts; the whole chart has an aria-label.
"""

from __future__ import annotations

from django import template
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

register = template.Library()

BAR, GAP, HEIGHT, AXIS = 6, 2, 34, 10
# Time to book, in minutes: the buckets of its histogram.
BOOKING_BUCKETS = ((15, "<15m"), (60, "<1h"), (240, "<4h"), (1440, "<1d"), (None, "1d+"))


def _svg(width: int, height: int, label: str, body: SafeString, css: str) -> SafeString:
    return format_html(
        '<svg class="rd-chart {}" viewBox="0 0 {} {}" width="{}" height="{}" role="img" aria-label="{}">{}</svg>',
        css,
        width,
        height,
        width,
        height,
        label,
        body,
    )


@register.simple_tag
def hourly_bars(series, label: str = "") -> SafeString:
    """24 bars, one per hour of the company's day; the hours still to come are drawn as empty slots."""
    top = max(series.hours) or 1
    width = 24 * (BAR + GAP) - GAP
    bars = []
    for hour, count in enumerate(series.hours):
        x = hour * (BAR + GAP)
        if hour > series.now_hour:
            bars.append(
                format_html(
                    '<rect class="rd-chart__slot" x="{}" y="{}" width="{}" height="1"></rect>', x, HEIGHT - 1, BAR
                )
            )
            continue
        h = max(1, round(HEIGHT * count / top)) if count else 1
        css = "rd-chart__bar" if count else "rd-chart__slot rd-chart__slot--past"
        if hour == series.now_hour:
            css += " rd-chart__bar--now"
        bars.append(
            format_html(
                '<rect class="{}" x="{}" y="{}" width="{}" height="{}"><title>{} · {}</title></rect>',
                css,
                x,
                HEIGHT - h,
                BAR,
                h,
                f"{hour:02d}:00–{(hour + 1) % 24:02d}:00",
                count,
            )
        )
    ticks = format_html_join(
        "",
        '<text class="rd-chart__tick" x="{}" y="{}">{}</text>',
        ((hour * (BAR + GAP), HEIGHT + AXIS - 1, f"{hour:02d}") for hour in (0, 6, 12, 18)),
    )
    body = format_html("{}{}", SafeString("".join(bars)), ticks)
    return _svg(width, HEIGHT + AXIS, f"{label}: {series.total} today, by hour", body, "rd-chart--hourly")


@register.simple_tag
def share_ring(share, label: str = "") -> SafeString:
    """A ring filled to the share (of 100), the percentage in its middle."""
    percent = share.percent
    size, radius = 46, 18
    arc = ""
    if percent:
        arc = format_html(
            '<circle class="rd-chart__arc" cx="23" cy="23" r="{}" pathLength="100" stroke-dasharray="{} 100" '
            'transform="rotate(-90 23 23)"><title>{} of {}</title></circle>',
            radius,
            percent,
            share.part,
            share.whole,
        )
    body = format_html(
        '<circle class="rd-chart__track" cx="23" cy="23" r="{}"></circle>{}'
        '<text class="rd-chart__center" x="23" y="27" text-anchor="middle">{}</text>',
        radius,
        arc,
        "—" if percent is None else f"{percent}%",
    )
    words = "nothing moved yet" if percent is None else f"{percent}% ({share.part} of {share.whole})"
    return _svg(size, size, f"{label}: {words}", body, "rd-chart--ring")


def _bucket_counts(minutes: list[float]) -> list[tuple[str, int]]:
    counts = [0] * len(BOOKING_BUCKETS)
    for value in minutes:
        for index, (limit, _label) in enumerate(BOOKING_BUCKETS):
            if limit is None or value < limit:
                counts[index] += 1
                break
    return [(label, count) for (_limit, label), count in zip(BOOKING_BUCKETS, counts, strict=True)]


@register.simple_tag
def duration_bars(durations, label: str = "") -> SafeString:
    """How long today's bookings took from the ticket's opening, in five buckets."""
    buckets = _bucket_counts(durations.minutes)
    top = max((count for _label, count in buckets), default=0) or 1
    step, bar = 34, 26
    width = step * len(buckets) - (step - bar)
    rects = []
    for index, (name, count) in enumerate(buckets):
        h = max(1, round(HEIGHT * count / top)) if count else 1
        rects.append(
            format_html(
                '<rect class="{}" x="{}" y="{}" width="{}" height="{}"><title>{} · {} booking{}</title></rect>'
                '<text class="rd-chart__tick" x="{}" y="{}" text-anchor="middle">{}</text>',
                "rd-chart__bar" if count else "rd-chart__slot rd-chart__slot--past",
                index * step,
                HEIGHT - h,
                bar,
                h,
                name,
                count,
                "" if count == 1 else "s",
                index * step + bar // 2,
                HEIGHT + AXIS - 1,
                name,
            )
        )
    return _svg(
        width,
        HEIGHT + AXIS,
        f"{label}: " + ", ".join(f"{name} {count}" for name, count in buckets),
        SafeString("".join(rects)),
        "rd-chart--buckets",
    )


@register.simple_tag
def kind_bars(rows, label: str = "") -> SafeString:
    """One horizontal bar per kind of escalation still open, longest first (at most four)."""
    rows = list(rows)[:4]
    width, line = 190, 11
    if not rows:
        body = format_html(
            '<rect class="rd-chart__slot rd-chart__slot--past" x="0" y="{}" width="{}" height="1"></rect>',
            HEIGHT - 1,
            width,
        )
        return _svg(width, HEIGHT + AXIS, f"{label}: none", body, "rd-chart--kinds")
    top = max(count for _kind, _name, count in rows) or 1
    parts = []
    for index, (kind, name, count) in enumerate(rows):
        y = index * line
        length = max(2, round(80 * count / top))
        parts.append(
            format_html(
                '<rect class="rd-chart__bar rd-chart__bar--{}" x="0" y="{}" width="{}" height="7"><title>{} · {}</title></rect>'
                '<text class="rd-chart__tick" x="{}" y="{}">{} {}</text>',
                kind.lower(),
                y + 1,
                length,
                name,
                count,
                length + 4,
                y + 8,
                count,
                name,
            )
        )
    height = max(HEIGHT + AXIS, len(rows) * line)
    return _svg(
        width,
        height,
        f"{label}: " + ", ".join(f"{name} {count}" for _k, name, count in rows),
        SafeString("".join(parts)),
        "rd-chart--kinds",
    )


@register.filter
def minutes_text(value) -> str:
    """42 → "42 min", 135 → "2 h 15", None → "—"."""
    if value is None:
        return "—"
    minutes = round(value)
    if minutes < 60:
        return f"{minutes} min"
    hours, rest = divmod(minutes, 60)
    if hours >= 48:
        return f"{hours // 24} d"
    return f"{hours} h {rest:02d}" if rest else f"{hours} h"
