from django.apps import AppConfig
from django.db.models.signals import post_migrate


class CommonConfig(AppConfig):
    name = "dispatch.common"
    label = "common"
    verbose_name = "Common"

    def ready(self) -> None:
        from .roles import role_groups_sync

        # After every migrate, so that permissions of newly added models reach the role groups.
        post_migrate.connect(role_groups_sync, dispatch_uid="dispatch.role_groups_sync")
