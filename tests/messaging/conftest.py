"""Local stand-ins for the providers (a Twilio Messages API and an SMTP server) and a clock.

The adapters under test are the real ones; only the far end is local. Each server listens on
127.0.0.1 on a free port and records exactly what it received. The Twilio one lives in
tests/twilio_local.py, shared with the scale-out run.
"""

from __future__ import annotations

import socket
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.twilio_local import TWILIO_FROM, TWILIO_SID, TWILIO_TOKEN, LocalTwilio, twilio_serving

__all__ = ["TWILIO_FROM", "TWILIO_SID", "TWILIO_TOKEN", "LocalTwilio", "free_port"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def twilio_server():
    with twilio_serving() as twilio:
        yield twilio


@pytest.fixture
def live_sms(settings, twilio_server):
    """Live delivery mode, SMS pointed at the local Twilio."""
    settings.DISPATCH_MESSAGE_DELIVERY = "live"
    settings.TWILIO_ACCOUNT_SID = TWILIO_SID
    settings.TWILIO_AUTH_TOKEN = TWILIO_TOKEN
    settings.TWILIO_FROM_NUMBER = TWILIO_FROM
    settings.TWILIO_API_BASE = twilio_server.base_url
    return twilio_server


class _Inbox:
    def __init__(self) -> None:
        self.envelopes = []

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server(settings):
    """aiosmtpd on a free local port, with Django's SMTP backend pointed at it."""
    from aiosmtpd.controller import Controller

    inbox = _Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    settings.DISPATCH_MESSAGE_DELIVERY = "live"
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = port
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    settings.DEFAULT_FROM_EMAIL = "dispatch@door-service.example"
    try:
        yield inbox
    finally:
        controller.stop()


@pytest.fixture
def sync_queue(monkeypatch):
    """django-q runs async_task inline. Conf is read at import, so the setting alone is not enough."""
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", True)


class Clock:
    def __init__(self) -> None:
        self.now = timezone.now()

    def __call__(self):
        return self.now

    def advance(self, **delta) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock(monkeypatch):
    """A frozen clock for the code under test: time moves only when the test says so."""
    frozen = Clock()
    monkeypatch.setattr(timezone, "now", frozen)
    return frozen
