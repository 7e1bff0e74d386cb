"""Addresses as a good dispatcher reads them: a street texted without a city in a one-city service
area is taken to be there (and said back), "Plaza", "Town Center" or "Park Place" inside a street
name never cut it short, an address outside the area is answered politely and left to a
dispatcher, and every new site gets coordinates (with their precision) without a network call."""

from __future__ import annotations

import json
import socket
import threading
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
import zipcodes
from django.core.cache import caches
from django.urls import reverse

from dispatch.intake.extract import address_find, street_key, street_parts
from dispatch.intake.models import ServiceArea
from dispatch.intake.service_area import area_parse, service_area
from dispatch.intake.services import message_receive, missing_items
from dispatch.intake.tasks import site_geocode
from dispatch.messaging.models import OutboundMessage
from dispatch.tickets.models import Site, Ticket
from dispatch.tickets.states import TicketState
from tests.factories import SiteFactory, UserFactory

pytestmark = pytest.mark.django_db

PHONE = "+15035550142"
SIX = Decimal("0.000001")


def sms(body: str, *, sid: str, phone: str = PHONE):
    return message_receive(channel="SMS", provider_message_id=sid, sender_phone=phone, body=body)


def area(places: str) -> None:
    ServiceArea.objects.update_or_create(pk=1, defaults={"places": places})


def sent(ticket, template: str) -> list[str]:
    return [m.body for m in OutboundMessage.objects.filter(ticket=ticket, template=template).order_by("created_at")]


@pytest.fixture
def no_network(monkeypatch):
    """The connections and name look-ups tried that would leave the machine (each refused)."""
    tried: list[str] = []
    local = (None, "127.0.0.1", "::1", "localhost")
    real_connect, real_getaddrinfo = socket.socket.connect, socket.getaddrinfo

    def connect(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in local:
            tried.append(str(address[0]))
            raise OSError("no network in this test")
        return real_connect(self, address)

    def getaddrinfo(host, *args, **kwargs):
        if host not in local:
            tried.append(str(host))
            raise OSError("no network in this test")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return tried


# --- A street without a city, in a one-city service area ------------------------------------------


def test_a_street_texted_without_a_city_in_a_portland_area_proceeds_and_is_said_back(no_network):
    area("Portland, OR")
    result = sms("455 NW 10th Ave, the side door won't latch", sid="SM-portland")
    ticket = Ticket.objects.select_related("site").get(pk=result.ticket.pk)

    assert "city" not in result.asked and "city" not in missing_items(ticket)
    assert ticket.state in (TicketState.TRIAGED, TicketState.READY_TO_SCHEDULE)
    assert ticket.incident_type == "DOOR_WONT_LATCH"
    assert (ticket.site.address_line1, ticket.site.city, ticket.site.region) == ("455 NW 10th Ave", "Portland", "OR")
    (confirmation,) = sent(ticket, "customer_confirmation_address")
    assert "We have 455 NW 10th Ave, Portland, OR - reply if that's wrong" in confirmation
    assert not sent(ticket, "needs_info") and not result.flagged
    # The site is placed at the city's centroid, and says that is how exact it is.
    assert ticket.site.geo_precision == "city"
    assert Decimal("45.3") < ticket.site.lat < Decimal("45.7")
    assert Decimal("-122.9") < ticket.site.lng < Decimal("-122.4")
    assert no_network == []


def test_the_area_defaults_to_the_setting_until_someone_edits_it(settings):
    settings.DISPATCH_SERVICE_AREA = "Portland, OR; Beaverton, OR; 972"
    assert service_area().cities[0].name == "Portland" and service_area().zip_prefixes == ("972",)
    settings.DISPATCH_SERVICE_AREA = "Seattle, WA"
    assert ServiceArea.objects.get(pk=1).places == "Portland, OR; Beaverton, OR; 972"


def test_with_several_cities_a_street_alone_still_asks_for_the_city():
    area("Portland, OR; Beaverton, OR")
    result = sms("455 NW 10th Ave, the side door won't latch", sid="SM-two-cities")
    assert result.asked == ["city"]
    assert Ticket.objects.get(pk=result.ticket.pk).state == TicketState.NEEDS_INFO


def test_without_a_service_area_nothing_is_assumed():
    result = sms("455 NW 10th Ave, the side door won't latch", sid="SM-no-area")
    assert result.asked == ["city"] and not sent(result.ticket, "customer_confirmation_address")


def test_the_street_given_in_a_reply_takes_the_city_too_and_is_said_back():
    area("Portland, OR")
    first = sms("the side door won't latch", sid="SM-1")
    assert first.asked == ["address"]
    second = sms("455 NW 10th Ave", sid="SM-2")
    ticket = Ticket.objects.select_related("site").get(pk=first.ticket.pk)
    assert second.ticket.pk == ticket.pk and ticket.site.city == "Portland"
    assert ticket.state in (TicketState.TRIAGED, TicketState.READY_TO_SCHEDULE)
    (said,) = sent(ticket, "address_confirm")
    assert "we have 455 NW 10th Ave, Portland, OR for your request" in said and "reply if that's wrong" in said


# --- Street names holding street types ------------------------------------------------------------


@pytest.fixture
def _fresh_form_limits(settings):
    caches["limits"].clear()
    yield
    caches["limits"].clear()


def test_the_blackhawk_plaza_emergency_keeps_its_street_and_is_not_asked_for_the_zip(
    client, settings, _fresh_form_limits
):
    area("Danville, CA; 945")
    response = client.post(
        "/request/",
        {
            "name": "Lee Park",
            "phone": "(925) 555-0142",
            "email": "",
            "address": "4120 Blackhawk Plaza Cir, Danville, CA 94506",
            "problem": "EMERGENCY: the front door glass is shattered and we can't lock the store.",
            "preferred_times": "",
            "website": "",
            "submission_id": "6a0c43a2-7f5e-4b43-9a57-0c1b8f1d3e11",
        },
    )
    assert response.status_code == 302
    ticket = Ticket.objects.select_related("site").get(customer_phone="+19255550142")
    site = ticket.site
    assert (site.address_line1, site.city, site.region, site.postal_code) == (
        "4120 Blackhawk Plaza Cir",
        "Danville",
        "CA",
        "94506",
    )
    assert ticket.priority == "EMERGENCY" and not missing_items(ticket)
    assert ticket.state in (TicketState.TRIAGED, TicketState.READY_TO_SCHEDULE)
    assert not OutboundMessage.objects.filter(ticket=ticket, template="needs_info").exists()
    assert site.geo_precision == "zip" and site.lat is not None


@pytest.mark.parametrize(
    "text,line1,line2,city,region,postal",
    [
        ("4120 Blackhawk Plaza Cir, Danville, CA 94506", "4120 Blackhawk Plaza Cir", "", "Danville", "CA", "94506"),
        (
            "1 Town Center Dr, Suite 200, Beaverton OR 97005",
            "1 Town Center Dr",
            "Suite 200",
            "Beaverton",
            "OR",
            "97005",
        ),
        ("300 Park Place Blvd Apt 4B, Clearwater FL", "300 Park Place Blvd", "Apt 4B", "Clearwater", "FL", ""),
        ("12 Park Place, Apt 3, Portland OR 97201", "12 Park Place", "Apt 3", "Portland", "OR", "97201"),
        (
            "800 SE Hawthorne Blvd #3, Portland, OR 97214-3204",
            "800 SE Hawthorne Blvd",
            "#3",
            "Portland",
            "OR",
            "97214-3204",
        ),
        ("the door at 455 NW 10th Ave won't latch", "455 NW 10th Ave", "", "", "", ""),
        ("2211 Market St N, Tacoma, Washington 98402", "2211 Market St N", "", "Tacoma", "WA", "98402"),
        ("please come to 55 Broadway Oakland", "55 Broadway", "", "Oakland", "", ""),
        ("1450 Harrison St\nSan Francisco, CA 94103", "1450 Harrison St", "", "San Francisco", "CA", "94103"),
        ("455 NW 10th Ave Portland the door is stuck", "455 NW 10th Ave", "", "Portland", "", ""),
    ],
)
def test_tricky_addresses_are_split_into_their_parts(text, line1, line2, city, region, postal):
    found = address_find(text).value
    assert (found["line1"], found["line2"], found["city"], found["region"], found["postal_code"]) == (
        line1,
        line2,
        city,
        region,
        postal,
    )


def test_spellings_of_one_street_compare_equal_and_its_type_is_not_its_name():
    assert street_key("455 Northwest 10th Avenue") == street_key("455 NW 10th Ave") == "455 nw 10th ave"
    assert street_parts("4120 Blackhawk Plaza Cir") == ("4120", ("blackhawk", "plaza"))
    assert street_parts("4120 blackhawk plaza circle, suite 3") == ("4120", ("blackhawk", "plaza"))


# --- Outside the service area ---------------------------------------------------------------------


def test_an_address_in_a_city_outside_the_area_is_answered_politely_and_flagged():
    area("Portland, OR")
    result = sms("4120 Blackhawk Plaza Cir, Danville, CA 94506 - front door won't latch", sid="SM-danville")
    ticket = Ticket.objects.get(pk=result.ticket.pk)
    assert result.flagged and result.message.needs_review
    assert result.message.flags["outside_service_area"] == "Danville, CA"
    (answer,) = sent(ticket, "outside_service_area")
    assert "We don't serve Danville, CA yet; a dispatcher will get back to you." in answer
    # Never scheduled by itself, never asked anything, no promise of appointment times.
    assert ticket.state == TicketState.TRIAGED
    assert not sent(ticket, "needs_info") and not sent(ticket, "customer_confirmation")


def test_a_zip_code_inside_the_areas_prefixes_is_served():
    area("Portland, OR; 970; 972")
    result = sms("12 SW 5th Ave, Beaverton OR 97005, closer is leaking", sid="SM-beaverton")
    assert not result.flagged and "outside_service_area" not in result.message.flags


def test_an_area_list_reads_cities_states_and_zip_prefixes():
    parsed = area_parse("Portland, OR; Beaverton Oregon\n972")
    assert [(c.name, c.state) for c in parsed.cities] == [("Portland", "OR"), ("Beaverton", "OR")]
    assert parsed.zip_prefixes == ("972",) and parsed.metro is None


def test_a_dispatcher_edits_the_service_area_in_the_back_office(client):
    client.force_login(UserFactory(role="dispatcher"))
    service_area()  # made from the setting at first use
    response = client.post(reverse("admin:intake_servicearea_change", args=[1]), {"places": "Portland, OR"})
    assert response.status_code == 302
    assert service_area().metro.name == "Portland"


# --- Coordinates ----------------------------------------------------------------------------------


def test_a_new_site_gets_its_zip_centroid_offline(no_network, settings):
    settings.DISPATCH_GEOCODER = "offline"
    result = sms("1 Town Center Dr, Beaverton OR 97005: the automatic door is stuck open", sid="SM-zip")
    site = Site.objects.get(pk=result.ticket.site_id)
    (shipped,) = zipcodes.matching("97005")  # the centroid the package ships
    assert site.geo_precision == "zip"
    assert (site.lat, site.lng) == (Decimal(shipped["lat"]).quantize(SIX), Decimal(shipped["long"]).quantize(SIX))
    assert no_network == []


class _Nominatim(BaseHTTPRequestHandler):
    """Answers /search the way Nominatim's JSON format does, and keeps what it was asked."""

    asked: list[dict] = []

    def do_GET(self):
        url = urlsplit(self.path)
        type(self).asked.append({"path": url.path, **{k: v[0] for k, v in parse_qs(url.query).items()}})
        body = json.dumps(
            [
                {
                    "place_id": 1,
                    "lat": "45.529100",
                    "lon": "-122.681300",
                    "display_name": "455, Northwest 10th Avenue, Pearl District, Portland, Oregon, 97209, United States",
                    "class": "building",
                    "type": "yes",
                    "addresstype": "building",
                }
            ]
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def nominatim_server():
    _Nominatim.asked = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Nominatim)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_the_network_guard_would_catch_a_geocoder_call(no_network, settings):
    from dispatch.common.geocode import nominatim_locate

    settings.DISPATCH_GEOCODER_URL = "https://nominatim.openstreetmap.org"
    assert nominatim_locate({"line1": "455 NW 10th Ave", "city": "Portland", "region": "OR"}) is None
    assert set(no_network) == {"nominatim.openstreetmap.org"}  # tried (and retried), refused


def test_a_site_keeps_a_better_point_than_the_geocoder_finds(settings, nominatim_server):
    settings.DISPATCH_GEOCODER_URL = nominatim_server
    site = Site.objects.create(
        account=SiteFactory().account,
        name="Shop",
        address_line1="455 NW 10th Ave",
        city="Portland",
        region="OR",
        lat=Decimal("45.5"),
        lng=Decimal("-122.6"),
        geo_precision="address",
    )
    assert site_geocode(str(site.pk)) is False


def test_with_nominatim_configured_the_site_gets_a_street_level_point_after_commit(
    settings, nominatim_server, django_capture_on_commit_callbacks
):
    settings.DISPATCH_GEOCODER = "nominatim"
    settings.DISPATCH_GEOCODER_URL = nominatim_server
    settings.DISPATCH_GEOCODER_USER_AGENT = "real-dispatch-tests"
    area("Portland, OR")
    with django_capture_on_commit_callbacks() as callbacks:
        result = sms("455 NW 10th Ave, the side door won't latch", sid="SM-nominatim")
    site = Site.objects.get(pk=result.ticket.site_id)
    # Inside the intake transaction only the offline point: no network while locks are held.
    assert site.geo_precision == "city" and not _Nominatim.asked
    for callback in callbacks:
        callback()  # the hand-off to the task queue (synchronous in the test settings)
    site.refresh_from_db()
    assert (site.lat, site.lng, site.geo_precision) == (Decimal("45.529100"), Decimal("-122.681300"), "address")
    (query,) = _Nominatim.asked
    assert query["path"] == "/search" and query["street"] == "455 NW 10th Ave" and query["city"] == "Portland"
