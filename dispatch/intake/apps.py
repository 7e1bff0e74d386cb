from django.apps import AppConfig


class IntakeConfig(AppConfig):
    name = "dispatch.intake"
    label = "intake"
    verbose_name = "Intake"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from dispatch.tickets import catalog

        from . import selectors

        catalog.reader_register("ticket_time_preference", selectors.ticket_time_preference)
        catalog.reader_register("ticket_open_question", selectors.ticket_open_question)
