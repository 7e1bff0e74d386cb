"""Every page family links the product's icon from static/, and /favicon.ico answers with it,
so no browser's request for an icon ends in a 404 in the log."""

from __future__ import annotations

import logging
import re

import pytest
from django.contrib.staticfiles import finders
from django.urls import reverse

from dispatch.intake.status_links import status_token
from tests.admin.conftest import logged_in
from tests.factories import TechnicianFactory, ticket_new

pytestmark = pytest.mark.django_db


def icon_links(html: str) -> list[str]:
    return re.findall(r'<link rel="(?:icon|apple-touch-icon)" href="([^"]+)"', html)


def test_no_page_logs_a_missing_favicon(client, caplog):
    ticket = ticket_new()
    technician = TechnicianFactory()
    desk = logged_in(client.__class__(), "dispatcher")
    tech = client.__class__()
    tech.force_login(technician.user)
    pages = {
        "admin sign-in": (client, reverse("admin:login")),
        "admin ticket page": (desk, reverse("admin:tickets_ticket_change", args=[ticket.pk])),
        "board": (desk, reverse("board:day")),
        "technician pages": (tech, reverse("field:jobs")),
        "technician sign-in": (client, reverse("field:login")),
        "customer request form": (client, reverse("intake:request_form")),
        "customer status page": (client, reverse("customer:status", args=[status_token(ticket)])),
        "API docs": (client, reverse("api:docs")),
    }
    with caplog.at_level(logging.WARNING, logger="django.request"):
        for family, (browser, url) in pages.items():
            response = browser.get(url)
            assert response.status_code == 200, family
            links = icon_links(response.content.decode())
            assert "/static/img/favicon.svg" in links and "/static/img/favicon.ico" in links, family
            for href in links:
                assert finders.find(href.removeprefix("/static/")), (family, href)

        icon = client.get("/favicon.ico")
        assert icon.status_code == 200 and icon["Content-Type"] == "image/x-icon"
        assert icon.content[:4] == b"\x00\x00\x01\x00"  # an ICO file
        assert "max-age" in icon["Cache-Control"]
    assert not [record for record in caplog.records if "Not Found" in record.getMessage()]


def test_the_favicon_answers_only_reads(client):
    assert client.post("/favicon.ico").status_code == 405
    assert client.head("/favicon.ico").status_code == 200
