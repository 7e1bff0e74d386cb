"""manage.py simulate_day: a working day of the autopilot on a throwaway database, as one JSON
summary and an HTML report.

The day runs on a fresh database made for it and destroyed afterwards, as `manage.py
testserver` does (every migration applied, nothing of the real data read or written); only the
report file is left behind. See dispatch/simulation/day.py for what is simulated and how
each figure is defined.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from dispatch.simulation.day import simulate_day
from dispatch.simulation.report import report_write


def default_report_path() -> Path:
    return Path(settings.VAR_DIR) / "simulate_day.html"


def throwaway_name() -> str:
    """The simulation's own database: never the test suite's (test_<name>), which autoclobber
    would drop, and for SQLite one in memory, so no file is written or removed."""
    if connection.vendor == "sqlite":
        return "file:simulate_day?mode=memory&cache=shared"
    return f"{connection.settings_dict['NAME']}_simulate_day"


class Command(BaseCommand):
    help = "Simulate a working day of the autopilot on a throwaway database; print the summary as JSON."

    def add_arguments(self, parser):
        parser.add_argument("--seed", type=int, default=1, help="The day's random seed (the same seed, the same day).")
        parser.add_argument("--messages", type=int, default=60, help="Customers' first messages over the day.")
        parser.add_argument("--report", type=Path, default=None, help="Where to write the HTML report.")
        parser.add_argument("--json-only", action="store_true", help="Print the summary only; write no report.")

    def handle(self, *args, **options):
        if options["messages"] < 0:
            raise CommandError("--messages must be 0 or more.")
        settings_dict = connection.settings_dict
        old_name, old_test = settings_dict["NAME"], settings_dict.get("TEST")
        settings_dict["TEST"] = {**(old_test or {}), "NAME": throwaway_name()}
        # The services log every queued task and message; the summary is what this prints.
        previous = logging.root.manager.disable
        logging.disable(logging.INFO)
        try:
            # create_test_db prints what it does (the cache tables) to stdout: kept off the JSON.
            with contextlib.redirect_stdout(io.StringIO()):
                connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False, keepdb=False)
            try:
                result = simulate_day(seed=options["seed"], messages=options["messages"])
            finally:
                connection.creation.destroy_test_db(old_name, verbosity=0)
        finally:
            logging.disable(previous)
            settings_dict["TEST"] = old_test
        summary = result.summary
        if not options["json_only"]:
            path = (options["report"] or default_report_path()).resolve()
            report_write(result, path)
            summary = {**summary, "report": str(path)}
        self.stdout.write(json.dumps(summary, indent=2))
