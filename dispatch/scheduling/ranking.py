"""One ranker for technicians: the slot engine's windows and assignment.recommend's candidates
are scored with the same weights (`DISPATCH_SLOT_WEIGHTS` over `DEFAULT_WEIGHTS`).

A score is a sum of parts, each a fact times its weight: points lost for waiting, for driving
the job adds (a share of the drive home's change when the job follows the day's last one), for
work already booked, for missing the SLA; points gained for the site's
previous technician and for skill level. What a hard rule decides (has the skill, covers the
region, is free) is not weighed against these: it is an order that comes first
(`candidate_order`).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

DEFAULT_WEIGHTS: dict[str, Any] = {
    # Points lost per hour between now and the start; an emergency must go out first. For routine
    # work a day's wait weighs as much as 24 minutes of extra driving.
    "earliest_per_hour": {"EMERGENCY": 60.0, "URGENT": 6.0, "ROUTINE": 1.0},
    # Points lost per minute of driving the job adds to the technician's day.
    "travel_per_minute": 1.0,
    # The share of the drive home that counts when a job is added after the day's last job (the
    # "travel" part then weighs the drive in plus this share of how the drive home changes). The
    # engine books one job at a time and never sees those still to come; a day that already has
    # work often gets another job after this one, which moves the drive home again. On the
    # bench's day (bench/slots.py) 1.0 drives 457 minutes and 0.85 drives 448. Over 150 generated
    # days of each size from 15 to 55 jobs (--mixed-days 150) the two are within 1% of each other
    # on average, one ahead at some sizes and the other at the rest: a wash elsewhere.
    "home_leg_after_work": 0.85,
    # Points lost per hour the technician is already booked (that day for a window; their open
    # jobs for a recommendation, each counted as a typical job's length). Off by default: spreading
    # work for its own sake sends a second technician across town where the one already working
    # nearby could go (on the bench's day, 1.0 cost 39 more minutes of driving than 0).
    "workload_per_hour": 0.0,
    # Points gained by the technician who last worked at the site (knows the door and the people).
    "previous_technician": 15.0,
    # Points gained per skill level (1-5).
    "skill_level": 3.0,
    # Points lost for a finish after the SLA due time, plus per hour late.
    "sla_late": 50.0,
    "sla_late_per_hour": 5.0,
}
# Scores are shown as 100 plus the parts: a window or candidate with nothing for or against it scores 100.
BASE_SCORE = 100.0


def weights() -> dict[str, Any]:
    """The ranking weights: DISPATCH_SLOT_WEIGHTS over the defaults (per-priority dicts merge)."""
    configured = getattr(settings, "DISPATCH_SLOT_WEIGHTS", None) or {}
    merged = {**DEFAULT_WEIGHTS, **configured}
    by_priority = configured.get("earliest_per_hour")
    if isinstance(by_priority, dict):
        merged["earliest_per_hour"] = {**DEFAULT_WEIGHTS["earliest_per_hour"], **by_priority}
    elif isinstance(by_priority, (int, float)):
        merged["earliest_per_hour"] = {p: float(by_priority) for p in DEFAULT_WEIGHTS["earliest_per_hour"]}
    return merged


def earliest_weight(weight: dict[str, Any], priority: str) -> float:
    """Points lost per hour of waiting at this priority (routine's when the priority is unknown)."""
    by_priority = weight["earliest_per_hour"]
    return float(by_priority.get(priority, by_priority["ROUTINE"]))


def score_parts(
    weight: dict[str, Any],
    *,
    skill_level: int | None,
    booked_minutes: float,
    seconds_waiting: float = 0.0,
    per_hour_waiting: float = 0.0,
    added_travel_minutes: float = 0.0,
    previous_technician: bool = False,
    late_hours: float | None = None,
) -> dict[str, float]:
    """The weighted parts of one technician's score (positive is better)."""
    sla = 0.0
    if late_hours is not None:
        sla = -(float(weight["sla_late"]) + float(weight["sla_late_per_hour"]) * late_hours)
    return {
        "earliest": -per_hour_waiting * seconds_waiting / 3600,
        "travel": -float(weight["travel_per_minute"]) * added_travel_minutes,
        "workload": -float(weight["workload_per_hour"]) * booked_minutes / 60,
        "previous_technician": float(weight["previous_technician"]) if previous_technician else 0.0,
        "skill_level": float(weight["skill_level"]) * (skill_level or 0),
        "sla": sla,
    }


def score(parts: dict[str, float]) -> float:
    return round(BASE_SCORE + sum(parts.values()), 1)


def candidate_order(*, has_skill: bool, available: bool, covers_region: bool, score_value: float) -> tuple:
    """Sort key of a technician for a job: the hard rules first, in the order a dispatcher weighs
    them (the right skill; free in the window, since a booked technician cannot take the job at
    all while one from the next region can; covering the site's region), then the score."""
    return (not has_skill, not available, not covers_region, -score_value)
