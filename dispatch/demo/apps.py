from django.apps import AppConfig


class DemoConfig(AppConfig):
    name = "dispatch.demo"
    label = "demo"
    verbose_name = "Demo data"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the deploy check against the demo's logins)
