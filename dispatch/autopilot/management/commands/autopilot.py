"""manage.py autopilot --once: one pass of the built-in dispatcher, now, printing what it did."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from dispatch.autopilot.services import autopilot_pass


class Command(BaseCommand):
    help = "Run the autopilot: one pass over the jobs it may move (--once), printing each decision."

    def add_arguments(self, parser):
        parser.add_argument(
            "--once", action="store_true", help="One pass, synchronously (the worker runs it every minute)."
        )
        parser.add_argument("--json", action="store_true", help="Print the decisions as JSON.")

    def handle(self, *args, **options):
        if not options["once"]:
            raise CommandError("The worker runs the autopilot every minute; use --once to run one pass now.")
        decisions = autopilot_pass()
        if options["json"]:
            self.stdout.write(json.dumps([d.as_dict() for d in decisions], indent=2))
            return
        if not decisions:
            self.stdout.write("Nothing for the autopilot to do.")
        for d in decisions:
            self.stdout.write(f"{d.ref}  {d.state:<32} {d.action:<12} {d.reason}")
