from axes.apps import AppConfig as AxesConfig
from django.apps import AppConfig


class AccountsConfig(AppConfig):
    default = True  # the app's own config; LockoutsConfig below is django-axes'
    name = "dispatch.accounts"
    label = "accounts"
    verbose_name = "Sign-ins"

    def ready(self) -> None:
        from . import signals  # noqa: F401  (connects the sign-in record to Django's and axes' signals)


class LockoutsConfig(AxesConfig):
    """django-axes under the name the back office shows for it."""

    verbose_name = "Sign-in lockouts"
