"""The signed status link a customer gets: it names one ticket and cannot be forged."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from dispatch.intake.status_links import status_link, status_token, status_token_verify
from tests.factories import ticket_new

pytestmark = pytest.mark.django_db


def test_the_link_is_absolute_and_its_token_verifies_to_the_ticket(settings):
    settings.DISPATCH_PUBLIC_URL = "https://dispatch.doorservice.example"
    ticket = ticket_new()
    link = status_link(ticket)
    token = status_token(ticket)
    assert link == f"https://dispatch.doorservice.example/s/{token}/"
    assert len(token) < 80  # short enough for a text message
    assert status_token_verify(token) == ticket.id


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),
        lambda t: "x" + t,
        lambda t: "",
        lambda t: t.split(":")[0],
        lambda t: "a" * 500,
        lambda t: None,
    ],
)
def test_altered_or_garbage_tokens_verify_to_nothing(mangle):
    assert status_token_verify(mangle(status_token(ticket_new()))) is None


def test_a_token_signed_with_another_key_is_refused(settings):
    token = status_token(ticket_new())
    settings.SECRET_KEY = "another-secret-key-entirely-0123456789abcdef"
    assert status_token_verify(token) is None


def test_links_expire_after_the_configured_age(settings):
    settings.DISPATCH_STATUS_LINK_MAX_AGE_DAYS = 30
    ticket = ticket_new()
    assert status_token_verify(status_token(ticket, signed_at=timezone.now() - timedelta(days=29))) == ticket.id
    assert status_token_verify(status_token(ticket, signed_at=timezone.now() - timedelta(days=31))) is None
