from django.apps import AppConfig


class AutopilotConfig(AppConfig):
    name = "dispatch.autopilot"
    label = "autopilot"
    verbose_name = "Autopilot"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from dispatch.tickets import catalog, services

        from . import flags, nudges

        # After a change commits into a state the autopilot acts on, it looks at that ticket
        # at once instead of waiting for the next minute's pass.
        services.state_listener_register(nudges.ticket_changed)
        # The ticket list and the dispatch board show which bookings are the autopilot's and
        # which suggestions wait for a dispatcher (neither imports the autopilot).
        catalog.ticket_flags_register(flags.AUTOPILOT, flags.SUGGESTION_WAITING)
