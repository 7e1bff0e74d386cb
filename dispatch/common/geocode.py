"""Where an address is on the map: coordinates for the slot engine's travel estimates, and how
exact they are.

The default works offline, from the ZIP code centroids the `zipcodes` package ships: a ZIP code
gives its centroid (precision "zip"), a city without one the mean of its ZIP codes' centroids
("city"). It makes no network call, so reading a message costs no more with it than without.
A production site wanting street-level points sets DISPATCH_GEOCODER=nominatim (OpenStreetMap's
search through geopy, or a self-hosted server at DISPATCH_GEOCODER_URL); that one is asked after
the intake transaction commits, never inside it, and the offline point stands when it fails.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from statistics import fmean
from urllib.parse import urlsplit

from django.conf import settings

# How exact a site's coordinates are (Site.geo_precision), best first.
PRECISION_ADDRESS = "address"
PRECISION_STREET = "street"
PRECISION_ZIP = "zip"
PRECISION_CITY = "city"
PRECISIONS = (PRECISION_ADDRESS, PRECISION_STREET, PRECISION_ZIP, PRECISION_CITY)
PRECISION_CHOICES = [
    (PRECISION_ADDRESS, "address"),
    (PRECISION_STREET, "street"),
    (PRECISION_ZIP, "ZIP code centroid"),
    (PRECISION_CITY, "city centroid"),
]

OFFLINE = "offline"
NOMINATIM = "nominatim"
SIX_PLACES = Decimal("0.000001")


@dataclass(frozen=True)
class Location:
    lat: Decimal
    lng: Decimal
    precision: str


def place_key(text: str) -> str:
    """A place name as compared: letters only, case and accents folded ("San José" is "sanjose")."""
    text = unicodedata.normalize("NFKD", text or "")
    return "".join(re.findall(r"[a-z]+", "".join(ch for ch in text if not unicodedata.combining(ch)).lower()))


def _point(lat: float, lng: float, precision: str) -> Location:
    return Location(Decimal(str(lat)).quantize(SIX_PLACES), Decimal(str(lng)).quantize(SIX_PLACES), precision)


@lru_cache(maxsize=1)
def _zip_table() -> dict[str, tuple[str, str, float, float]]:
    """ZIP code -> (city, state, lat, lng), read once from the package's data."""
    import zipcodes  # its data (a few MB) loads on first use, not at every start

    return {
        row["zip_code"]: (row["city"], row["state"], float(row["lat"]), float(row["long"]))
        for row in zipcodes.list_all()
        if row.get("lat") and row.get("long")
    }


@lru_cache(maxsize=1)
def _city_table() -> dict[tuple[str, str], tuple[float, float]]:
    """(city key, state) -> the mean of the city's ZIP centroids. Delivery ZIPs (STANDARD) when
    the city has any: a PO box or one company's ZIP sits where the post office or company is."""
    import zipcodes

    standard: dict[tuple[str, str], list[tuple[float, float]]] = {}
    other: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for row in zipcodes.list_all():
        if not (row.get("lat") and row.get("long")):
            continue
        point = (float(row["lat"]), float(row["long"]))
        names = [row["city"], *(row.get("acceptable_cities") or [])]
        for index, name in enumerate(names):
            # A ZIP counts fully for its own city; for the other names the post office accepts,
            # only when that place has no ZIP of its own (a neighbourhood named on letters).
            table = standard if (row["zip_code_type"] == "STANDARD" and index == 0) else other
            table.setdefault((place_key(name), row["state"]), []).append(point)
    return {
        key: (fmean(p[0] for p in points), fmean(p[1] for p in points)) for key, points in {**other, **standard}.items()
    }


def zip_place(postal_code: str) -> tuple[str, str] | None:
    """The city and state of a ZIP code (ZIP+4 is read by its first five digits), or None."""
    row = _zip_table().get((postal_code or "").strip()[:5])
    return (row[0], row[1]) if row else None


def place_states(city: str) -> set[str]:
    """The states that have a place of this name (empty: no US post office knows it)."""
    key = place_key(city)
    return {state for (name, state) in _city_table() if name == key} if key else set()


def place_zips(city: str, state: str = "") -> list[str]:
    """The ZIP codes whose post office names this city first (in this state, when given)."""
    key, state = place_key(city), state.upper()
    return [z for z, row in _zip_table().items() if place_key(row[0]) == key and (not state or row[1] == state)]


def place_known(city: str, state: str = "") -> bool:
    """Whether a US post office knows a place of this name (in this state, when given)."""
    key = place_key(city)
    if not key:
        return False
    if state:
        return (key, state.upper()) in _city_table()
    return key in _place_names()


@lru_cache(maxsize=1)
def _place_names() -> frozenset[str]:
    return frozenset(name for name, _state in _city_table())


def offline_locate(address: dict) -> Location | None:
    """The address's ZIP centroid, or its city's centroid; None when neither is known."""
    row = _zip_table().get((address.get("postal_code") or "").strip()[:5])
    if row:
        return _point(row[2], row[3], PRECISION_ZIP)
    city, state = address.get("city") or "", (address.get("region") or "").upper()
    states = {state} if state else place_states(city)
    # A city name in several states and no state given ("Springfield"): no guess.
    if len(states) == 1:
        point = _city_table().get((place_key(city), states.pop()))
        if point:
            return _point(point[0], point[1], PRECISION_CITY)
    return None


def geocoder_name() -> str:
    return (getattr(settings, "DISPATCH_GEOCODER", "") or OFFLINE).strip().lower()


# Nominatim's kinds of result, by how exact a point they give.
_NOMINATIM_PRECISION = {
    "road": PRECISION_STREET,
    "postcode": PRECISION_ZIP,
    "city": PRECISION_CITY,
    "town": PRECISION_CITY,
    "village": PRECISION_CITY,
    "hamlet": PRECISION_CITY,
    "suburb": PRECISION_CITY,
    "neighbourhood": PRECISION_CITY,
    "municipality": PRECISION_CITY,
    "county": PRECISION_CITY,
}


def nominatim_locate(address: dict) -> Location | None:
    """The address as Nominatim finds it (a structured search in the US), or None. Network:
    call it outside any transaction."""
    from geopy.exc import GeopyError
    from geopy.geocoders import Nominatim

    url = urlsplit(getattr(settings, "DISPATCH_GEOCODER_URL", "") or "https://nominatim.openstreetmap.org")
    geocoder = Nominatim(
        # Nominatim's usage policy asks every client to name itself.
        user_agent=getattr(settings, "DISPATCH_GEOCODER_USER_AGENT", "") or "real-dispatch",
        domain=url.netloc + url.path.rstrip("/"),
        scheme=url.scheme or "https",
        timeout=float(getattr(settings, "DISPATCH_GEOCODER_TIMEOUT_SECONDS", 10)),
    )
    query = {
        "street": address.get("line1") or "",
        "city": address.get("city") or "",
        "state": address.get("region") or "",
        "postalcode": (address.get("postal_code") or "")[:5],
    }
    try:
        found = geocoder.geocode({k: v for k, v in query.items() if v}, exactly_one=True, country_codes="us")
    except GeopyError:
        return None
    if found is None:
        return None
    kind = (found.raw or {}).get("addresstype") or (found.raw or {}).get("type") or ""
    return _point(found.latitude, found.longitude, _NOMINATIM_PRECISION.get(kind, PRECISION_ADDRESS))


def more_exact(precision: str, than: str) -> bool:
    """Whether `precision` is better than `than` (an empty precision is the worst)."""
    rank = {name: index for index, name in enumerate(PRECISIONS)}
    return rank.get(precision, len(PRECISIONS)) < rank.get(than, len(PRECISIONS))
