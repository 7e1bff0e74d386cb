"""Customer pages: the public request form, its confirmation, and the signed status page.

Nothing here needs a login. The form is CSRF-protected, rate-limited per address and carries a
honeypot; the confirmation and status pages open only with a signed token and show a customer
their own ticket's state, reference, appointment window and technician's first name — nothing
else about the ticket, the site or anyone else.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from dispatch.common.client_ip import client_address, client_network
from dispatch.common.errors import DispatchError
from dispatch.common.languages import ENGLISH, SPANISH, language_clean
from dispatch.common.parsing import zone_or_default
from dispatch.common.throttle import FixedWindow, WindowCount
from dispatch.intake.services import message_receive
from dispatch.intake.status_links import status_link, status_token, status_token_verify
from dispatch.tickets import catalog
from dispatch.tickets.models import Ticket
from dispatch.tickets.states import TicketState

from .forms import PHOTO_MAX_BYTES, PHOTO_MAX_COUNT, ServiceRequestForm, attachments_store

log = logging.getLogger(__name__)

RATE_LIMIT_SUBMISSIONS = 5
RATE_LIMIT_WINDOW_SECONDS = 600
FORM_WINDOW = FixedWindow("intake-web-form", RATE_LIMIT_WINDOW_SECONDS)
# Five photos at the cap, plus the text fields.
FORM_MAX_BYTES = PHOTO_MAX_COUNT * PHOTO_MAX_BYTES + 1024 * 1024


# --- the request form -----------------------------------------------------------------------


def _rate_limited(request: HttpRequest) -> WindowCount | None:
    """Count this submission against its address; the window's count once the address is over
    the limit (it is refused until the window ends), else None."""
    counted = FORM_WINDOW.hit(client_network(request))
    return counted if counted.count > RATE_LIMIT_SUBMISSIONS else None


def _form_page(request: HttpRequest, form: ServiceRequestForm, *, status: int = 200) -> HttpResponse:
    return render(
        request,
        "intake/request_form.html",
        {"form": form, "photo_max_mb": PHOTO_MAX_BYTES // (1024 * 1024), "photo_max_count": PHOTO_MAX_COUNT},
        status=status,
    )


def _too_large_page(request: HttpRequest) -> HttpResponse:
    return render(request, "intake/too_large.html", {"photo_max_mb": PHOTO_MAX_BYTES // (1024 * 1024)}, status=413)


@never_cache
@require_http_methods(["GET", "POST"])
def request_form(request: HttpRequest) -> HttpResponse:
    """GET: an empty form with a fresh submission id. POST: intake, then the confirmation page."""
    if request.method == "GET":
        return _form_page(
            request, ServiceRequestForm(initial={"submission_id": ServiceRequestForm.fresh_submission_id()})
        )
    try:
        if int(request.META.get("CONTENT_LENGTH") or 0) > FORM_MAX_BYTES:
            return _too_large_page(request)
        form = ServiceRequestForm(request.POST, request.FILES)
    except (ValueError, RequestDataTooBig, TooManyFieldsSent):
        return _too_large_page(request)
    limited = _rate_limited(request)
    if limited is not None:
        log.warning("web request form rate-limited: %s", client_address(request))
        minutes = max(1, -(-limited.retry_after // 60))
        response = render(request, "intake/rate_limited.html", {"minutes": minutes}, status=429)
        response["Retry-After"] = str(limited.retry_after)
        return response
    if form.is_bot:
        # Thank a bot like a person, so it learns nothing; nothing is stored.
        log.info("web request form honeypot filled: %s", client_address(request))
        return render(request, "intake/request_thanks.html", {"status": None})
    if not form.is_valid():
        return _form_page(request, form, status=400)
    data = form.cleaned_data
    submission_id = str(data["submission_id"])
    try:
        result = message_receive(
            channel="WEB",
            provider_message_id=submission_id,
            sender_phone=data["phone"],
            sender_email=data["email"],
            sender_name=data["name"],
            # The address and time fields travel apart from the words, as the customer separated them.
            body=data["problem"],
            media=attachments_store(data["photos"], folder=f"web/{submission_id}", images_only=True),
            raw={
                "name": data["name"],
                "phone": request.POST.get("phone", ""),
                "email": data["email"],
                "address": data["address"],
                "problem": data["problem"],
                "preferred_times": data["preferred_times"],
                "submission_id": submission_id,
                "remote_addr": client_address(request),
            },
            extra={"address": data["address"], "preferred_times": data["preferred_times"]},
        )
    except DispatchError as error:
        form.add_error(None, error.message)
        return _form_page(request, form, status=error.status if 400 <= error.status < 500 else 400)
    if result.ticket is None:
        return render(request, "intake/request_thanks.html", {"status": None})
    # Post/redirect/get: reloading the confirmation never re-submits the form.
    return redirect("intake:request_thanks", token=status_token(result.ticket))


# --- what a customer may see of their ticket ------------------------------------------------


@dataclass(frozen=True)
class Step:
    label: str
    done: bool
    current: bool


# (headline, one plain sentence, step reached: 0 received, 1 scheduled, 2 on the way, 3 done)
CUSTOMER_WORDS: dict[str, tuple[str, str, int]] = {
    TicketState.NEW: ("We've received your request", "A dispatcher is reviewing it now.", 0),
    TicketState.NEEDS_INFO: (
        "We need a little more information",
        "We've sent you a message. Just reply to it and we'll take it from there.",
        0,
    ),
    TicketState.TRIAGED: ("We've received your request", "A dispatcher is reviewing it now.", 0),
    TicketState.APPROVAL_REQUIRED: (
        "Waiting for approval",
        "The work needs an approval before we go ahead. We'll keep you posted.",
        0,
    ),
    TicketState.READY_TO_SCHEDULE: (
        "Finding a time",
        "We're finding the earliest time a technician can come. We'll message you shortly.",
        0,
    ),
    TicketState.SCHEDULE_PROPOSED: (
        "Please choose a time",
        "We've sent you some appointment times. Reply with the one that suits you.",
        0,
    ),
    TicketState.PENDING_CUSTOMER_CONFIRMATION: (
        "Please confirm your appointment",
        "We're waiting for you to confirm the time we sent you.",
        1,
    ),
    TicketState.SCHEDULED: (
        "Scheduled",
        "Your appointment is booked. We'll message you when the technician is on the way.",
        1,
    ),
    TicketState.DISPATCHED: ("Technician on the way", "Your technician is heading to you.", 2),
    TicketState.ON_SITE: ("Technician has arrived", "Your technician is with you now.", 2),
    TicketState.IN_PROGRESS: ("Work in progress", "Your technician is working on it.", 2),
    TicketState.ON_HOLD: ("On hold", "The work is paused for the moment. We'll be in touch about the next step.", 1),
    TicketState.COMPLETED_PENDING_VERIFICATION: ("Work completed", "The work is done. Thank you for choosing us.", 3),
    TicketState.VERIFIED: ("Work completed", "The work is done. Thank you for choosing us.", 3),
    TicketState.INVOICED: ("Work completed", "The work is done. Thank you for choosing us.", 3),
    TicketState.CLOSED: ("Complete", "This request is complete. Thank you for choosing us.", 3),
    TicketState.CANCELLED: (
        "Cancelled",
        "This request has been cancelled. If that's a surprise, just send us a message.",
        -1,
    ),
}
STEP_LABELS = ("Received", "Scheduled", "On the way", "Done")

# The same page for a customer who writes in Spanish (the ticket's customer_language).
CUSTOMER_WORDS_ES: dict[str, tuple[str, str]] = {
    TicketState.NEW: ("Recibimos su solicitud", "Un despachador la está revisando ahora."),
    TicketState.NEEDS_INFO: (
        "Necesitamos un poco más de información",
        "Le enviamos un mensaje. Respóndalo y seguimos desde ahí.",
    ),
    TicketState.TRIAGED: ("Recibimos su solicitud", "Un despachador la está revisando ahora."),
    TicketState.APPROVAL_REQUIRED: (
        "Esperando aprobación",
        "El trabajo necesita una aprobación antes de seguir. Le mantendremos al tanto.",
    ),
    TicketState.READY_TO_SCHEDULE: (
        "Buscando un horario",
        "Buscamos el horario más pronto en que un técnico pueda ir. Le escribiremos en breve.",
    ),
    TicketState.SCHEDULE_PROPOSED: (
        "Elija un horario",
        "Le enviamos algunos horarios de visita. Responda con el que le convenga.",
    ),
    TicketState.PENDING_CUSTOMER_CONFIRMATION: (
        "Confirme su cita",
        "Esperamos que confirme el horario que le enviamos.",
    ),
    TicketState.SCHEDULED: (
        "Cita agendada",
        "Su cita está reservada. Le avisaremos cuando el técnico vaya en camino.",
    ),
    TicketState.DISPATCHED: ("El técnico va en camino", "Su técnico va hacia usted."),
    TicketState.ON_SITE: ("El técnico llegó", "Su técnico está con usted ahora."),
    TicketState.IN_PROGRESS: ("Trabajo en curso", "Su técnico está trabajando en ello."),
    TicketState.ON_HOLD: ("En pausa", "El trabajo está en pausa por ahora. Le contactaremos sobre el siguiente paso."),
    TicketState.COMPLETED_PENDING_VERIFICATION: ("Trabajo terminado", "El trabajo está hecho. Gracias por elegirnos."),
    TicketState.VERIFIED: ("Trabajo terminado", "El trabajo está hecho. Gracias por elegirnos."),
    TicketState.INVOICED: ("Trabajo terminado", "El trabajo está hecho. Gracias por elegirnos."),
    TicketState.CLOSED: ("Completado", "Esta solicitud está completa. Gracias por elegirnos."),
    TicketState.CANCELLED: (
        "Cancelada",
        "Esta solicitud fue cancelada. Si no lo esperaba, envíenos un mensaje.",
    ),
}
STEP_LABELS_ES = ("Recibida", "Agendada", "En camino", "Terminada")
# The page's own words, per language (the template reads them from `status.words`).
PAGE_WORDS = {
    ENGLISH: {
        "lang": "en",
        "request": "Service request",
        "progress": "Progress",
        "appointment": "Appointment",
        "technician": "Your technician",
        "documents": "Your documents",
        "invoice": "Invoice",
        "packet": "Closeout report",
        "packet_meta": "PDF · what was done, photos, checklist and signature",
        "help": "Questions or a change of plans? Just reply to our text or email.",
    },
    SPANISH: {
        "lang": "es",
        "request": "Solicitud de servicio",
        "progress": "Avance",
        "appointment": "Cita",
        "technician": "Su técnico",
        "documents": "Sus documentos",
        "invoice": "Factura",
        "packet": "Informe del trabajo",
        "packet_meta": "PDF · lo que se hizo, fotos, lista de verificación y firma",
        "help": "¿Preguntas o un cambio de planes? Responda a nuestro mensaje o correo.",
    },
}
_SPANISH_DAY_NAMES = ("lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo")
_SPANISH_MONTH_NAMES = (
    "enero",
    "febrero",
    "marzo",
    "abril",
    "mayo",
    "junio",
    "julio",
    "agosto",
    "septiembre",
    "octubre",
    "noviembre",
    "diciembre",
)
# The technician's name and the window mean something to the customer only while a visit is ahead or under way.
VISIT_STATES = frozenset(
    {
        TicketState.PENDING_CUSTOMER_CONFIRMATION,
        TicketState.SCHEDULED,
        TicketState.DISPATCHED,
        TicketState.ON_SITE,
        TicketState.IN_PROGRESS,
    }
)


def _window_text(start: datetime, end: datetime | None, tz_name: str, language: str = ENGLISH) -> tuple[str, str]:
    """("Tuesday, March 3", "9:00 – 11:00 AM") in the site's time zone ("martes, 3 de marzo" in Spanish)."""
    zone = zone_or_default(tz_name)
    start = start.astimezone(zone)
    if language == SPANISH:
        day = f"{_SPANISH_DAY_NAMES[start.weekday()]}, {start.day} de {_SPANISH_MONTH_NAMES[start.month - 1]}"
    else:
        day = f"{start:%A}, {start:%B} {start.day}"

    def clock(moment: datetime, *, meridiem: bool = True) -> str:
        hour = moment.hour % 12 or 12
        text = f"{hour}:{moment:%M}"
        return f"{text} {moment:%p}" if meridiem else text

    if end is None:
        return day, clock(start)
    end = end.astimezone(zone)
    same_half = start.strftime("%p") == end.strftime("%p") and start.date() == end.date()
    return day, f"{clock(start, meridiem=not same_half)} – {clock(end)}"


def customer_status(ticket: Ticket) -> dict:
    """The few facts a customer may see about their ticket, in their words."""
    headline, sentence, reached = CUSTOMER_WORDS.get(ticket.state, ("We're working on it", "We'll keep you posted.", 0))
    language = language_clean(ticket.customer_language)
    labels = STEP_LABELS
    if language == SPANISH:
        headline, sentence = CUSTOMER_WORDS_ES.get(ticket.state, ("Estamos en ello", "Le mantendremos al tanto."))
        labels = STEP_LABELS_ES
    visit = ticket.state in VISIT_STATES
    window = None
    if visit and ticket.scheduled_start:
        # The arrival window the customer was told (a day plan may have moved the job inside it).
        start, end = catalog.ticket_told_window(ticket.pk) or (ticket.scheduled_start, ticket.scheduled_end)
        day, hours = _window_text(start, end, ticket.site.timezone, language)
        window = {"day": day, "hours": hours}
    technician = ticket.assigned_tech.first_name if visit and ticket.assigned_tech_id else ""
    steps = [Step(label, done=reached >= i, current=reached == i) for i, label in enumerate(labels)]
    return {
        "words": PAGE_WORDS[language],
        "reference": ticket.short_ref,
        "headline": headline,
        "sentence": sentence,
        "cancelled": ticket.state == TicketState.CANCELLED,
        "finished": reached == 3,
        "steps": steps,
        "window": window,
        "technician": technician,
    }


def status_ticket(token: str) -> Ticket | None:
    """The ticket a customer's status link names, or None for a forged or expired link."""
    ticket_id = status_token_verify(token)
    if ticket_id is None:
        return None
    return (
        Ticket.objects.select_related("site", "assigned_tech")
        .only("id", "state", "scheduled_start", "scheduled_end", "site__timezone", "assigned_tech__display_name")
        .filter(pk=ticket_id)
        .first()
    )


def unknown_link(request: HttpRequest) -> HttpResponse:
    return render(request, "intake/status_unknown.html", status=404)


@never_cache
@require_GET
def request_thanks(request: HttpRequest, token: str) -> HttpResponse:
    """The confirmation after a web request: reference, next step, and the status link."""
    ticket = status_ticket(token)
    if ticket is None:
        return unknown_link(request)
    return render(
        request,
        "intake/request_thanks.html",
        {"status": customer_status(ticket), "status_url": status_link(ticket)},
    )
