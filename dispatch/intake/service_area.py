"""The company's service area, and where a customer's address stands in it.

The area is a list of cities ("Portland, OR") and ZIP code prefixes ("972"), kept in the one
ServiceArea row (admin-editable; made from settings.DISPATCH_SERVICE_AREA at first use). A
company serving one city reads a street without a city the way its dispatcher would: as being
in that city (the confirmation states the full address so the customer can correct it). An
address in a city or ZIP code outside the area is answered politely and left to a dispatcher.
An empty area limits nothing and assumes nothing: the customer is asked for their city.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.conf import settings

from dispatch.common.geocode import place_key, place_known, place_states, place_zips, zip_place

from .addresses import STATE_NAMES, US_STATES
from .models import ServiceArea

# Where an address stands (AddressCheck.verdict).
INSIDE = "inside"
# A street without a city or ZIP code, taken to be in the area's one city.
ASSUMED = "assumed"
OUTSIDE = "outside"
# Nothing to go by: no limit set, or a street alone in an area of several cities.
UNKNOWN = "unknown"


@dataclass(frozen=True)
class City:
    name: str
    state: str


@dataclass(frozen=True)
class Area:
    cities: tuple[City, ...] = ()
    zip_prefixes: tuple[str, ...] = ()

    @property
    def limited(self) -> bool:
        return bool(self.cities or self.zip_prefixes)

    @property
    def metro(self) -> City | None:
        """The area's one city (ZIP prefixes beside it are its own), or None."""
        return self.cities[0] if len(self.cities) == 1 else None


@dataclass(frozen=True)
class AddressCheck:
    verdict: str
    # The address, with the area's city filled in when it was ASSUMED.
    address: dict
    # What the customer is told is outside ("Danville, CA"), for OUTSIDE.
    place: str = ""


def area_parse(places) -> Area:
    """'Portland, OR; Beaverton, OR; 972' (or a list of such entries, or lines) as an Area."""
    entries = places if isinstance(places, (list, tuple)) else re.split(r"[;\n]+", places or "")
    cities, prefixes = [], []
    for entry in entries:
        entry = str(entry).strip().strip(",")
        if not entry:
            continue
        if re.fullmatch(r"\d{1,5}", entry):
            prefixes.append(entry)
            continue
        match = re.fullmatch(r"(?P<city>.+?)[,\s]+(?P<state>[A-Za-z]{2}|[A-Za-z ]{4,})", entry)
        state = ""
        if match:
            word = match.group("state").strip()
            state = word.upper() if word.upper() in US_STATES and len(word) == 2 else STATE_NAMES.get(word.lower(), "")
        city = match.group("city").strip() if (match and state) else entry
        cities.append(City(city, state))
    return Area(tuple(cities), tuple(prefixes))


def service_area_settings() -> ServiceArea:
    """The service area row (made from the environment's default at first use)."""
    row = ServiceArea.objects.filter(pk=1).first()
    if row is None:
        default = getattr(settings, "DISPATCH_SERVICE_AREA", "") or ""
        if isinstance(default, (list, tuple)):
            default = "\n".join(str(entry) for entry in default)
        row, _ = ServiceArea.objects.get_or_create(pk=1, defaults={"places": default})
    return row


def service_area() -> Area:
    """The company's service area as it is configured now (one query)."""
    return area_parse(service_area_settings().places)


def _city_inside(area: Area, city: str, state: str) -> bool:
    key = place_key(city)
    return any(place_key(c.name) == key and (not c.state or not state or c.state == state) for c in area.cities)


def address_check(address: dict | None, *, area: Area) -> AddressCheck | None:
    """Where a customer's address stands in the area; None without an address."""
    if not address or not (address.get("line1") or "").strip():
        return None
    city, state = (address.get("city") or "").strip(), (address.get("region") or "").strip().upper()
    postal = (address.get("postal_code") or "").strip()[:5]
    if not area.limited:
        return AddressCheck(UNKNOWN, address)
    if not city and not postal:
        metro = area.metro
        if metro is None:
            return AddressCheck(UNKNOWN, address)
        filled = {**address, "city": metro.name, "region": metro.state}
        filled["text"] = ", ".join(
            p for p in (filled["line1"], filled.get("line2") or "", metro.name, metro.state) if p
        )
        return AddressCheck(ASSUMED, filled)
    if postal and any(postal.startswith(prefix) for prefix in area.zip_prefixes):
        return AddressCheck(INSIDE, address)
    if city and _city_inside(area, city, state):
        return AddressCheck(INSIDE, address)
    zip_city = zip_place(postal) if postal else None
    if zip_city and _city_inside(area, *zip_city):
        return AddressCheck(INSIDE, address)
    if (
        not postal
        and area.zip_prefixes
        and any(z.startswith(prefix) for z in place_zips(city, state) for prefix in area.zip_prefixes)
    ):
        # A city without a ZIP code, whose ZIP codes are in the area.
        return AddressCheck(INSIDE, address)
    if not postal and not place_known(city, state):
        # A neighbourhood or a name the post office does not know ("Pearl District"): a
        # dispatcher reads it, but nobody is turned away on it.
        return AddressCheck(UNKNOWN, address)
    if not state:
        states = place_states(city) if city else set()
        state = states.pop() if len(states) == 1 else (zip_city[1] if zip_city else "")
    label = city or (zip_city[0] if zip_city else postal)
    return AddressCheck(OUTSIDE, address, place=f"{label}, {state}" if state and label != postal else label)
