"""The customer's status link: /s/<token>/, where the token is the ticket id, signed.

The token proves that we handed out the link; it carries nothing but the ticket id, and the
status page shows only the state, the appointment window and the technician's first name.
Links stay valid for DISPATCH_STATUS_LINK_MAX_AGE_DAYS (a customer may check weeks later).
"""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import datetime

from django.conf import settings
from django.core import signing

from dispatch.tickets.models import Ticket

SALT = "dispatch.intake.status-link"
DEFAULT_MAX_AGE_DAYS = 180


class _StatusSigner(signing.TimestampSigner):
    """Django's timestamp signer, signing at a given moment instead of now when told to."""

    def __init__(self, *, signed_at: datetime | None = None) -> None:
        super().__init__(salt=SALT)
        self.signed_at = signed_at

    def timestamp(self) -> str:
        if self.signed_at is None:
            return super().timestamp()
        return signing.b62_encode(int(self.signed_at.timestamp()))


def status_token(ticket: Ticket, *, signed_at: datetime | None = None) -> str:
    """The signed token for one ticket (URL-safe), signed now or at `signed_at`."""
    # The id's 16 bytes in URL-safe base64 keep the link short enough for a text message.
    packed = base64.urlsafe_b64encode(uuid.UUID(str(ticket.id)).bytes).decode().rstrip("=")
    return _StatusSigner(signed_at=signed_at).sign(packed)


def status_link(ticket: Ticket) -> str:
    """The absolute URL of the ticket's status page."""
    base = getattr(settings, "DISPATCH_PUBLIC_URL", "").rstrip("/")
    return f"{base}/s/{status_token(ticket)}/"


def status_token_verify(token: str) -> uuid.UUID | None:
    """The ticket id a token was signed for, or None for a forged, altered or expired token."""
    if not isinstance(token, str) or not token or len(token) > 200:
        return None
    max_age_days = int(getattr(settings, "DISPATCH_STATUS_LINK_MAX_AGE_DAYS", DEFAULT_MAX_AGE_DAYS))
    try:
        value = _StatusSigner().unsign(token, max_age=max_age_days * 86400)
        return uuid.UUID(bytes=base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
    except (signing.BadSignature, ValueError, binascii.Error):
        return None
