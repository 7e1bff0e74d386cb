from django.apps import AppConfig


class DemoConfig(AppConfig):
    name = "dispatch.demo"
    label = "demo"
    verbose_name = "Demo data"
