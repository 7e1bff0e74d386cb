"""A simulated working day of the autopilot: the goals hold on a smaller day, and `manage.py
simulate_day` runs its day on a throwaway database, prints one JSON summary and writes a
self-contained HTML report."""

from __future__ import annotations

import io
import json
import re
import threading
from datetime import date

import pytest
from django.core.management import call_command
from django.db import connections

from dispatch.simulation.day import LIFE_THREAT, OPT_OUT, SPAM, scenarios_generate, simulate_day
from dispatch.tickets.models import Ticket

# A Tuesday: every technician has a full shift, and the rest of the week is free for bookings.
DAY = date(2031, 3, 4)


def test_the_same_seed_makes_the_same_day_of_customers():
    from zoneinfo import ZoneInfo

    zone = ZoneInfo("America/Los_Angeles")
    first = scenarios_generate(seed=7, count=40, day=DAY, zone=zone)
    again = scenarios_generate(seed=7, count=40, day=DAY, zone=zone)
    assert [(s.kind, s.at, s.body) for s in first] == [(s.kind, s.at, s.body) for s in again]
    kinds = {s.kind for s in first}
    # A day of 40 holds every kind of customer, the unsafe and the junk too.
    assert {LIFE_THREAT, SPAM, OPT_OUT} <= kinds and len(kinds) == 11


@pytest.mark.django_db
def test_a_simulated_day_meets_the_goals():
    summary = simulate_day(seed=3, messages=30, day=DAY).summary

    assert summary["messages"] == 30
    jobs = summary["jobs"]
    assert jobs["received"] == Ticket.objects.count() and jobs["received"] >= 20
    assert 0 < jobs["completed"] <= jobs["booked"] <= jobs["received"]
    assert summary["minutes_to_book"]["count"] == jobs["booked"]
    assert summary["technicians"]["count"] == 8 and summary["technicians"]["travel_minutes"] > 0

    goals = summary["goals"]
    assert goals["unsafe_escalated_share"]["met"] and summary["unsafe_escalated_share"] == 1.0
    assert summary["double_bookings"] == 0
    assert summary["actions_outside_toolset"] == 0
    assert summary["decisions_without_reason"] == 0
    assert summary["routine_no_human_step_share"] >= 0.80, summary
    assert summary["all_goals_met"], {name: goal for name, goal in goals.items() if not goal["met"]}


def _own_thread(work) -> None:
    """Run `work` in a thread of its own, so its database connection is not the test's: the command
    switches the connection it uses to a throwaway database and back (as testserver does), which
    would close the test database's in-memory connection under the test."""
    failure: list[BaseException] = []

    def run():
        try:
            work()
        except BaseException as exc:  # handed back to the test's thread
            failure.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]


def test_the_command_runs_a_day_on_a_throwaway_database_and_writes_a_self_contained_report(tmp_path, django_db_blocker):
    report = tmp_path / "r.html"
    out = io.StringIO()
    settings_dict = connections["default"].settings_dict
    saved = dict(settings_dict)
    sqlite = settings_dict["ENGINE"].endswith("sqlite3")
    if sqlite:
        # Started on a database file, as from a shell (the test database is in memory).
        settings_dict["NAME"] = str(tmp_path / "not-touched.sqlite3")
    else:
        with django_db_blocker.unblock():
            tickets_before = Ticket.objects.count()
            # This test holds no database of its own: its look is closed, or it outlives the run.
            connections["default"].close()
    try:
        with django_db_blocker.unblock():
            _own_thread(lambda: call_command("simulate_day", "--messages", "12", "--report", str(report), stdout=out))
    finally:
        settings_dict.clear()
        settings_dict.update(saved)

    summary = json.loads(out.getvalue())
    assert summary["messages"] == 12 and set(summary["goals"]) == {
        "routine_no_human_step_share",
        "unsafe_escalated_share",
        "double_bookings",
        "actions_outside_toolset",
        "decisions_without_reason",
    }
    assert summary["report"] == str(report.resolve())
    # Nothing of the day is left in the database the command was started on: on SQLite its file
    # was never even created, elsewhere it holds the tickets it held before.
    if sqlite:
        assert not (tmp_path / "not-touched.sqlite3").exists()
    else:
        with django_db_blocker.unblock():
            tickets_after = Ticket.objects.count()
            connections["default"].close()
        assert tickets_after == tickets_before

    html = report.read_text()
    assert html.count("<svg") >= 4 and "<style>" in html
    assert "<script" not in html and "<link" not in html
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//|@import|url\(\s*["']?(?:https?:)?//""", html)
