"""`manage.py load_demo`: the demo company, its technicians, logins and tickets (idempotent)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from dispatch.common.errors import DispatchError
from dispatch.demo.services import demo_load, demo_logins


class Command(BaseCommand):
    help = (
        "Load a believable Bay Area door-service company with tickets across the lifecycle, every one "
        "moved by the real services. Running it again changes nothing."
    )

    def handle(self, *args, **options) -> None:
        try:
            summary = demo_load()
        except DispatchError as exc:
            # The failed story was rolled back; the stories before it are kept and are found next time.
            where = "; ".join(getattr(exc, "__notes__", []))
            raise CommandError(f"{exc.code}: {exc.message} ({where})") from exc
        counts = ", ".join(f"{value} {name}" for name, value in summary.counts.items())
        self.stdout.write(
            f"Demo company loaded: {counts}. "
            f"{summary.created_tickets} ticket(s) created now, {summary.existing_tickets} already there."
        )
        states = ", ".join(f"{state} {count}" for state, count in sorted(summary.states.items()))
        self.stdout.write(f"Tickets by state: {states}")
        for username in summary.login_conflicts:
            self.stdout.write(
                self.style.WARNING(
                    f"User {username!r} existed before the demo with another password; it was left unchanged."
                )
            )
        self.stdout.write("Demo logins (username / password):")
        for username, password, role in demo_logins():
            self.stdout.write(f"  {username:<12} {password:<18} {role}")
