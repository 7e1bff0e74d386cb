from django.apps import AppConfig


class FieldConfig(AppConfig):
    """The technicians' mobile web pages at /tech/: the second face after the back office."""

    name = "dispatch.field"
    label = "field"
    verbose_name = "Technician pages"
