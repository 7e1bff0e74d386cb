from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "dispatch.api"
    label = "api"
    verbose_name = "Agent toolset"
    default_auto_field = "django.db.models.BigAutoField"
