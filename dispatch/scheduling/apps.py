from django.apps import AppConfig


class SchedulingConfig(AppConfig):
    name = "dispatch.scheduling"
    label = "scheduling"
    verbose_name = "Scheduling"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The wake-ups' commands (reminders, escalations) run in the worker; the web process needs
        # them known too, for the audit list's tool filter (tickets.commands.tool_names).
        from dispatch.tickets import catalog

        from . import wakeups  # noqa: F401
        from .appointments import ticket_told_window
        from .crews import crew_ticket_ids, technician_on_crew
        from .selectors import technicians_with_shifts

        # The status page (intake) says the arrival window the customer was told.
        catalog.reader_register("ticket_told_window", ticket_told_window)
        # The policy (tickets) lets a crew member act on the job as its assigned technician.
        catalog.reader_register("technician_on_crew", technician_on_crew)
        catalog.reader_register("crew_ticket_ids", crew_ticket_ids)
        # Setup health (technicians) lists the technicians the slot engine can never book.
        catalog.reader_register("technicians_with_shifts", technicians_with_shifts)
