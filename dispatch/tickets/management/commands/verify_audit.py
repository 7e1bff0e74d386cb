"""`manage.py verify_audit`: walk the audit hash chains and name the first event that does not fit."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from dispatch.tickets.audit import ChainReport, audit_chain_verify
from dispatch.tickets.models import AuditEvent


def _failure_message(report: ChainReport) -> str:
    """Name the bad spot by chain, position and id; for a gap the id shown is the event after the gap."""
    where = report.chain or "the trail"
    if report.bad_seq is not None:
        where += f" event #{report.bad_seq}"
    problem = report.problem
    if report.bad_event_id:
        found = AuditEvent.objects.filter(pk=report.bad_event_id).values("ticket_id", "seq", "lane_seq").first()
        position = None
        if found is not None:
            position = found["seq"] if report.chain.startswith("ticket") else found["lane_seq"]
        if position is not None and position != report.bad_seq:
            problem += f"; event #{position} has id {report.bad_event_id}"
        else:
            where += f" (id {report.bad_event_id})"
    return f"Audit chain broken at {where}: {problem}. {report.checked} events before it verified."


class Command(BaseCommand):
    help = (
        "Verify the audit trail's hash chains (every ticket's and every lane's). Exits 0 when every event is in place and unaltered, "
        "1 naming the first edited or missing event otherwise."
    )

    def handle(self, *args, **options) -> None:
        report = audit_chain_verify()
        if report.ok:
            self.stdout.write(self.style.SUCCESS(f"Audit chain intact: {report.checked} events checked."))
            return
        # CommandError makes manage.py print the message to stderr and exit with status 1.
        raise CommandError(_failure_message(report))
