"""Background work of intake: a better point for a new site from the production geocoder."""

from __future__ import annotations

import logging

from dispatch.common import geocode
from dispatch.tickets.models import Site

log = logging.getLogger(__name__)

SITE_GEOCODE_TASK = "dispatch.intake.tasks.site_geocode"


def site_geocode_schedule(site_id) -> None:
    """Hand the look-up to a worker; losing the hand-off leaves the offline point, which serves."""
    from django_q.tasks import async_task

    try:
        async_task(SITE_GEOCODE_TASK, str(site_id))
    except Exception:  # the broker may be down; the site keeps its ZIP or city centroid
        log.exception("Could not queue the geocoding of site %s; it keeps its offline coordinates.", site_id)


def site_geocode(site_id: str) -> bool:
    """Ask the configured geocoder for the site's address and keep the answer when it is more
    exact than what the site has. Runs outside any transaction: it waits on the network."""
    site = Site.objects.filter(pk=site_id).first()
    if site is None or not site.address_line1:
        return False
    address = {
        "line1": site.address_line1,
        "city": site.city,
        "region": site.region,
        "postal_code": site.postal_code,
    }
    location = geocode.nominatim_locate(address)
    if location is None or not geocode.more_exact(location.precision, site.geo_precision):
        return False
    # Only if nobody changed the point meanwhile (a dispatcher's typed coordinates win).
    return bool(
        Site.objects.filter(pk=site.pk, lat=site.lat, lng=site.lng, geo_precision=site.geo_precision).update(
            lat=location.lat, lng=location.lng, geo_precision=location.precision
        )
    )
