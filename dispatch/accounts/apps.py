from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "dispatch.accounts"
    label = "accounts"
    verbose_name = "Sign-ins"

    def ready(self) -> None:
        from . import signals  # noqa: F401  (connects the sign-in record to Django's and axes' signals)
