"""Customers who write in Spanish are understood and answered in Spanish: the problem, the urgency,
the address and the times they give are read from Spanish words, the ticket keeps the language,
and every message to them (the confirmation, a question, 911 first, the proposal of times, the
booking) is written from the Spanish text of its template, with days and months in Spanish."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from dispatch.common.languages import language_detect
from dispatch.intake.models import ExtractedField
from dispatch.intake.services import message_receive
from dispatch.messaging.models import MessageTemplate, OutboundMessage
from dispatch.messaging.services import outbox_enqueue
from dispatch.scheduling.notifications import customer_notify, options_phrase, window_phrase
from dispatch.tickets.models import Ticket
from dispatch.tickets.states import TicketState
from tests.factories import SiteFactory, ticket_proposed

pytestmark = pytest.mark.django_db

PHONE = "+17135550188"


def sms(body: str, *, sid: str, phone: str = PHONE):
    return message_receive(channel="SMS", provider_message_id=sid, sender_phone=phone, body=body)


def sent(ticket) -> list[OutboundMessage]:
    return list(OutboundMessage.objects.filter(ticket=ticket).order_by("created_at"))


@pytest.mark.parametrize(
    "text,language",
    [
        ("la puerta de la tienda no cierra, necesito ayuda", "es"),
        ("Hola buenas tardes, el door de mi casa no traba", "es"),
        ("se metieron a robar y no puedo cerrar la tienda esta noche", "es"),
        # A Spanish greeting on an English message is still English.
        ("hola! the patio door wont close all the way, latch is broken", "en"),
        ("my door won't latch", "en"),
        # Too little to tell: the caller keeps what it knew.
        ("1450 Broadway", None),
        ("ok", None),
    ],
)
def test_the_language_of_a_message_is_told_from_its_words(text, language):
    assert language_detect(text) == language


def test_a_spanish_request_is_read_and_confirmed_in_spanish():
    result = sms(
        "Hola, la puerta de atras ya no traba, hay que empujarla para que cierre. "
        "4100 Harrisburg Blvd, Houston TX 77003.\nGracias, Rosa",
        sid="SM-es-1",
    )
    ticket = Ticket.objects.get(pk=result.ticket.pk)

    assert ticket.customer_language == "es"
    assert ticket.incident_type == "DOOR_WONT_LATCH" and ticket.priority == "ROUTINE"
    assert ticket.customer_name == "Rosa"
    assert ticket.state == TicketState.READY_TO_SCHEDULE
    (confirmation,) = sent(ticket)
    assert confirmation.template == "customer_confirmation"
    assert confirmation.body.startswith("Real Dispatch Door Service: gracias, recibimos su solicitud")
    assert ticket.short_ref in confirmation.body and "/s/" in confirmation.body


def test_a_spanish_request_without_an_address_is_asked_in_spanish_and_the_answer_fills_it():
    first = sms("buenas, la puerta automatica de la entrada no abre, el sensor no funciona", sid="SM-es-2")
    ticket = Ticket.objects.get(pk=first.ticket.pk)
    # The automatic door's template also asks how the technician gets to it: one question for both.
    assert ticket.state == TicketState.NEEDS_INFO and first.asked == ["address", "access"]
    question = sent(ticket)[-1]
    assert question.template == "needs_info"
    assert "¿Nos puede indicar la direccion de la puerta (numero, calle y ciudad) y como llega" in question.body

    second = sms("es en 2301 N Main St, Houston TX 77009, pregunte por el encargado", sid="SM-es-3")
    ticket.refresh_from_db()
    assert second.ticket.pk == ticket.pk
    assert ticket.site.address_line1 == "2301 N Main St" and ticket.site.city == "Houston"
    assert "pregunte por el encargado" in ticket.site.access_instructions
    assert ticket.state == TicketState.READY_TO_SCHEDULE


def test_a_gas_smell_in_spanish_is_told_to_call_911_first_in_spanish():
    result = sms("hay olor a gas en el edificio y la puerta de salida no abre!! 900 Bagby St Houston TX", sid="SM-es-4")
    ticket = Ticket.objects.get(pk=result.ticket.pk)
    assert ticket.priority == "EMERGENCY" and result.flagged
    first = sent(ticket)[0]
    assert first.template == "call_911_first" and "LLAME AL 911 PRIMERO" in first.body


@pytest.mark.parametrize(
    "text,priority",
    [
        ("me quede afuera de la casa y esta lloviendo, la llave no gira", "EMERGENCY"),
        ("me quede afuera de la oficina, la llave no gira", "URGENT"),
        ("se metieron a robar anoche, forzaron la puerta", "EMERGENCY"),
        ("la bisagra de la puerta del baño esta floja, no es urgente", "ROUTINE"),
        # An emergency exit is a kind of door, not an emergency.
        ("la barra antipanico de la salida de emergencia esta floja pero si abre", "ROUTINE"),
        ("nadie salio herido pero el vidrio de la puerta esta quebrado", "URGENT"),
    ],
)
def test_urgency_is_read_from_spanish_words(text, priority):
    result = sms(f"{text}. 77 Navigation Blvd, Houston TX", sid=f"SM-{abs(hash(text))}")
    assert Ticket.objects.get(pk=result.ticket.pk).priority == priority


@pytest.mark.parametrize(
    "when,label,hours",
    [
        ("el martes despues de las 3", "Tuesday after 3", (15, 18)),
        ("el sabado en la mañana", "Saturday morning", (8, 12)),
        ("mañana entre las 2 y las 4", "tomorrow between 2 and 4", (14, 16)),
        ("el jueves a las 9 de la mañana si se puede", "Thursday at 9am", (9, 11)),
    ],
)
def test_times_given_in_spanish_are_kept_as_windows(when, label, hours):
    result = sms(
        f"hay que cambiar la chapa de la puerta principal, puedo {when}. 1200 Main St, Houston TX 77002",
        sid=f"SM-{label}",
    )
    (window,) = ExtractedField.objects.get(ticket=result.ticket, name="time_windows").value
    assert window["label"] == label
    start, end = datetime.fromisoformat(window["start"]), datetime.fromisoformat(window["end"])
    assert (start.hour, end.hour) == hours
    # A lock change needs someone there: the time given meets the template's need, nothing is asked.
    assert "time_window" not in result.asked


@pytest.mark.parametrize(
    "body,option", [("el 2 por favor", 2), ("opción 1", 1), ("La 3, gracias", 3), ("1 me sirve", 1)]
)
def test_a_choice_of_times_in_spanish_is_read_as_the_number(body, option):
    ticket_proposed(site=SiteFactory(), customer_phone=PHONE)
    assert sms(body, sid="SM-choice").reply_option == option


def test_a_spanish_customer_gets_times_and_bookings_with_spanish_days():
    zone = ZoneInfo("America/Chicago")
    start, end = datetime(2026, 12, 8, 15, 0, tzinfo=UTC), datetime(2026, 12, 8, 17, 0, tzinfo=UTC)
    assert window_phrase(start, end, zone, language="es") == "martes 8 dic, 9-11 AM"
    assert window_phrase(start, end, zone) == "Tue Dec 8, 9-11 AM"
    options = [{"start": start.isoformat(), "end": end.isoformat()}]
    assert options_phrase(options, zone, language="es") == "1) martes 8 dic, 9-11 AM"

    ticket = ticket_proposed(site=SiteFactory(), customer_phone=PHONE)
    ticket.customer_language = "es"
    ticket.save(update_fields=["customer_language"])
    customer_notify(
        ticket=ticket,
        kind="BOOKING",
        occasion="test-es",
        template="schedule_confirmed",
        context={"window": window_phrase(start, end, zone, language="es")},
    )
    (booking,) = OutboundMessage.objects.filter(ticket=ticket, template="schedule_confirmed")
    assert booking.body.startswith("Real Dispatch Door Service: su visita esta confirmada para martes 8 dic, 9-11 AM")


def test_a_template_with_no_spanish_text_falls_back_to_english():
    assert not MessageTemplate.objects.filter(code="tech_dispatched", language="es").exists()
    message = outbox_enqueue(
        channel="SMS",
        recipient="+15105550142",
        template="tech_dispatched",
        language="es",
        context={"ticket_ref": "RD-1", "address": "1 Main St", "window": "9-11 AM"},
    )
    assert "new job RD-1 at 1 Main St" in message.body


def test_a_spanish_text_edited_in_the_admin_is_the_one_sent():
    MessageTemplate.objects.filter(code="customer_confirmation", language="es").update(
        body="{company}: ¡gracias! Su numero de solicitud es {ticket_ref}. {status_url}"
    )
    result = sms("la puerta del garaje no cierra bien. 3100 Main St, Houston TX 77002", sid="SM-es-6")
    (confirmation,) = OutboundMessage.objects.filter(ticket=result.ticket, template="customer_confirmation")
    assert confirmation.body.startswith("Real Dispatch Door Service: ¡gracias! Su numero de solicitud es RD-")


def test_a_customer_who_switches_to_spanish_is_answered_in_spanish():
    first = sms("my door won't latch", sid="SM-en-1")
    assert Ticket.objects.get(pk=first.ticket.pk).customer_language == "en"
    second = sms("perdon, mejor en español: es en el 55 de Broadway, Oakland CA", sid="SM-es-7")
    ticket = Ticket.objects.get(pk=second.ticket.pk)
    assert second.ticket.pk == first.ticket.pk and ticket.customer_language == "es"
