"""API credentials: bearer tokens made in the admin or by `manage.py create_api_token`."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from dispatch.common.roles import Role


class ApiToken(models.Model):
    """A bearer token bound to one role and, optionally, to some accounts/sites and a user.

    Only the sha256 of the token is stored; the plaintext is shown once, when it is issued.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=100, unique=True, help_text="Who or what uses it, e.g. 'openclaw-agent-prod'.")
    role = models.CharField(max_length=32, choices=Role.choices)
    # Required for technician tokens: a technician acts only on jobs assigned to them.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="api_tokens"
    )
    # Empty lists mean unscoped; otherwise the token may touch only these accounts/sites.
    account_ids = models.JSONField(default=list, blank=True)
    site_ids = models.JSONField(default=list, blank=True)
    prefix = models.CharField(
        max_length=16, editable=False, help_text="The first characters of the token, to recognise it."
    )
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["name"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.name} ({self.role})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    @property
    def display_prefix(self) -> str:
        return f"{self.prefix}…" if self.prefix else ""
