"""The signed status page /s/<token>/: the customer's state, reference, window and technician's
first name — and nothing else."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dispatch.intake.status_links import status_link, status_token
from dispatch.tickets.states import TicketState
from tests.factories import (
    SiteFactory,
    TechnicianFactory,
    ticket_at,
    ticket_dispatched,
    ticket_new,
    ticket_scheduled,
)

pytestmark = pytest.mark.django_db

# 16:00–18:00 UTC is 9:00–11:00 AM in Los Angeles (PDT) and 12:00–2:00 PM in New York (EDT).
START = datetime(2031, 6, 3, 16, 0, tzinfo=UTC)
END = datetime(2031, 6, 3, 18, 0, tzinfo=UTC)


def path_of(ticket) -> str:
    return f"/s/{status_token(ticket)}/"


def test_a_new_ticket_says_received_with_its_reference(client):
    ticket = ticket_new(summary="Front door won't latch", customer_name="Pat Rivera")
    response = client.get(path_of(ticket))
    assert response.status_code == 200
    page = response.content.decode()
    assert "We&#x27;ve received your request" in page or "We've received your request" in page
    assert ticket.short_ref in page
    assert response["Cache-Control"].startswith("max-age=0") or "no-cache" in response["Cache-Control"]


def test_the_link_is_absolute_on_the_public_url(settings):
    settings.DISPATCH_PUBLIC_URL = "https://dispatch.doorservice.example"
    ticket = ticket_new()
    assert status_link(ticket) == f"https://dispatch.doorservice.example/s/{status_token(ticket)}/"


def test_a_dispatched_ticket_shows_window_in_site_time_and_technician_first_name_only(client):
    site = SiteFactory(
        timezone="America/New_York",
        access_code="4821",
        access_instructions="Key under the mat by the loading dock",
        address_line1="77 Secret Lane",
    )
    technician = TechnicianFactory(display_name="Marisol Quintero-Vega", phone="+14155550199")
    ticket = ticket_dispatched(
        site=site,
        technician=technician,
        start=START,
        end=END,
        customer_name="Pat Rivera",
        description="Tenant in 4B says the strike plate is loose",
    )
    assert ticket.state == TicketState.DISPATCHED

    page = client.get(path_of(ticket)).content.decode()

    assert "Technician on the way" in page
    assert "Marisol" in page
    assert "Tuesday, June 3" in page
    assert "12:00 – 2:00 PM" in page
    for secret in (
        "Quintero",
        "+14155550199",
        "4821",
        "Key under the mat",
        "77 Secret Lane",
        "Pat Rivera",
        "strike plate",
        "Front door won",
        str(ticket.id),
        str(technician.id),
        str(site.id),
        site.account.name,
    ):
        assert secret not in page, secret


def test_a_scheduled_ticket_shows_its_window_in_the_site_time_zone(client):
    ticket = ticket_scheduled(site=SiteFactory(timezone="America/Los_Angeles"), start=START, end=END)
    page = client.get(path_of(ticket)).content.decode()
    assert "Scheduled" in page
    assert "Tuesday, June 3" in page and "9:00 – 11:00 AM" in page


@pytest.mark.parametrize(
    "state, words",
    [
        (TicketState.NEEDS_INFO, "We need a little more information"),
        (TicketState.READY_TO_SCHEDULE, "Finding a time"),
        (TicketState.SCHEDULE_PROPOSED, "Please choose a time"),
        (TicketState.ON_SITE, "Technician has arrived"),
        (TicketState.IN_PROGRESS, "Work in progress"),
        (TicketState.COMPLETED_PENDING_VERIFICATION, "Work completed"),
        (TicketState.INVOICED, "Work completed"),
        (TicketState.CLOSED, "Complete"),
        (TicketState.CANCELLED, "Cancelled"),
    ],
)
def test_every_state_reads_in_plain_words(client, state, words):
    page = client.get(path_of(ticket_at(state))).content.decode()
    assert words in page
    assert state.value not in page  # never the internal name
    assert "DOOR_WONT_LATCH" not in page


def test_a_cancelled_ticket_shows_no_technician_or_window(client):
    technician = TechnicianFactory(display_name="Marisol Quintero")
    ticket = ticket_at(TicketState.CANCELLED, technician=technician)
    page = client.get(path_of(ticket)).content.decode()
    assert "Marisol" not in page
    assert 'data-testid="window"' not in page


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),
        lambda t: t.split(":")[0],
        lambda t: "not-a-token",
        lambda t: t.replace(t[:4], "ffff", 1),
    ],
    ids=["signature-altered", "unsigned", "garbage", "id-altered"],
)
def test_a_forged_token_is_404_and_reveals_nothing(client, mangle):
    ticket = ticket_new()
    response = client.get(f"/s/{mangle(status_token(ticket))}/")
    assert response.status_code == 404
    assert ticket.short_ref not in response.content.decode()


def test_a_token_signed_with_another_key_is_404(client, settings):
    ticket = ticket_new()
    token = status_token(ticket)
    settings.SECRET_KEY = "another-secret-key-entirely-0123456789abcdef"
    assert client.get(f"/s/{token}/").status_code == 404


def test_a_token_for_a_deleted_or_unknown_ticket_is_404(client):
    class Ghost:
        id = "3f1c2a9e-0b7d-4e3f-8a5c-000000000000"

    assert client.get(f"/s/{status_token(Ghost())}/").status_code == 404


def test_the_page_is_phone_first(client):
    page = client.get(path_of(ticket_new())).content.decode()
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    assert "css/public.css" in page
    assert "http://" not in page.split("<body")[0] and "https://" not in page.split("<body")[0]  # no CDN


def test_a_customer_who_writes_in_spanish_reads_the_status_page_in_spanish(client):
    from html import unescape

    ticket = ticket_scheduled(site=SiteFactory(timezone="America/Los_Angeles"), start=START, end=END)
    ticket.customer_language = "es"
    ticket.save(update_fields=["customer_language"])
    page = unescape(client.get(path_of(ticket)).content.decode())
    assert '<html lang="es">' in page
    assert "Solicitud de servicio" in page and "Cita agendada" in page
    assert "martes, 3 de junio" in page and "9:00 – 11:00 AM" in page
    assert "Recibida" in page and "Agendada" in page
    assert "¿Preguntas o un cambio de planes?" in page
    # Nothing of the English page is left.
    assert "Service request" not in page and "Questions or a change" not in page


@pytest.mark.parametrize("state", list(TicketState))
def test_every_state_has_its_spanish_words(state):
    from dispatch.intake.views import CUSTOMER_WORDS, CUSTOMER_WORDS_ES

    assert (state in CUSTOMER_WORDS) == (state in CUSTOMER_WORDS_ES)
