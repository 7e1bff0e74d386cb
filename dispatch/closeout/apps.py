from django.apps import AppConfig


class CloseoutConfig(AppConfig):
    name = "dispatch.closeout"
    label = "closeout"
    verbose_name = "Closeout"
    default_auto_field = "django.db.models.BigAutoField"
