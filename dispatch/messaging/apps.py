from django.apps import AppConfig


class MessagingConfig(AppConfig):
    name = "dispatch.messaging"
    label = "messaging"
    verbose_name = "Messaging"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the check of the outbox's timing settings)
