from django.apps import AppConfig


class TechniciansConfig(AppConfig):
    name = "dispatch.technicians"
    label = "technicians"
    verbose_name = "Technicians"
    default_auto_field = "django.db.models.BigAutoField"
