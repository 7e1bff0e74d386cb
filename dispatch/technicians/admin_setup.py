"""Setup health in the back office: the warning after a save that leaves a gap, the dashboard's
panel and the page of its own (the gaps themselves are found by setup_health.py)."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from .setup_health import (
    JOB_TYPE_UNSKILLED,
    REGION_UNCOVERED,
    REGION_UNKNOWN,
    TECHNICIAN_KINDS,
    SetupProblem,
    setup_problems,
)

# How many problems the dashboard lists before "and N more" links to the page.
DASHBOARD_ROWS = 5

GROUPS = (
    ("Job types", frozenset({JOB_TYPE_UNSKILLED})),
    ("Regions", frozenset({REGION_UNCOVERED, REGION_UNKNOWN})),
    ("Technicians", TECHNICIAN_KINDS),
)


def problem_row(request: HttpRequest, problem: SetupProblem) -> dict:
    """A problem as the templates show it; the fix link only where the reader may follow it."""
    may_fix = request.user.has_perm(problem.fix_permission)
    return {
        "kind": problem.kind,
        "subject": problem.subject,
        "text": problem.text,
        "effect": problem.effect,
        "fix_label": problem.fix_label,
        "fix_url": problem.fix_url if may_fix else "",
    }


def setup_health_url() -> str:
    return reverse("admin:technicians_setup_health")


def setup_health_panel(request: HttpRequest) -> dict:
    """The dashboard's panel: the first few problems, how many there are, and the page's address."""
    problems = setup_problems()
    return {
        "count": len(problems),
        "rows": [problem_row(request, p) for p in problems[:DASHBOARD_ROWS]],
        "more": max(0, len(problems) - DASHBOARD_ROWS),
        "url": setup_health_url(),
    }


def setup_health_groups(request: HttpRequest) -> tuple[int, list[dict]]:
    """The page's problems by what they are about (job types, regions, technicians), empty groups left out."""
    problems = setup_problems()
    groups = []
    for title, kinds in GROUPS:
        rows = [problem_row(request, p) for p in problems if p.kind in kinds]
        if rows:
            groups.append({"title": title, "rows": rows})
    return len(problems), groups


def setup_problems_warn(request: HttpRequest, problems: list[SetupProblem], *, others: int = 0) -> None:
    """After a save: one warning per gap it leaves (the save itself stands), and a pointer to the
    Setup health page when other gaps remain elsewhere."""
    for problem in problems:
        may_fix = request.user.has_perm(problem.fix_permission)
        if may_fix:
            messages.warning(
                request,
                format_html(
                    '{} {} <a href="{}">{}</a>', problem.text, problem.effect, problem.fix_url, problem.fix_label
                ),
            )
        else:
            messages.warning(request, problem.sentence)
    if others:
        messages.info(
            request,
            format_html(
                'Setup health lists {} other problem{}: <a href="{}">see them</a>.',
                others,
                "" if others == 1 else "s",
                setup_health_url(),
            ),
        )
