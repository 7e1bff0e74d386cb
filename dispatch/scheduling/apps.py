from django.apps import AppConfig


class SchedulingConfig(AppConfig):
    name = "dispatch.scheduling"
    label = "scheduling"
    verbose_name = "Scheduling"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The wake-ups' commands (reminders, escalations) run in the worker; the web process needs
        # them known too, for the audit list's tool filter (tickets.commands.tool_names).
        from . import wakeups  # noqa: F401
