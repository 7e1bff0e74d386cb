"""Setup health: the gaps in a company's setup that leave the slot engine with nobody to offer.

A job type no active technician is skilled for, a region no active technician covers, and an
active technician with no shifts, no regions or no skills are each legal to save (a dispatcher
sets a company up in steps: the technician today, their shifts tomorrow), so they are flagged,
not refused. The admin warns after a save that leaves one, the dashboard and the Setup health
page list them all with a link to fix each, and the slot engine names one when it is why a job
has no window. Pure reads, in a fixed number of queries whatever the size of the company.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlencode

from django.db.models import Count, Exists, OuterRef
from django.urls import reverse

from dispatch.tickets import catalog
from dispatch.tickets.models import Site

from .models import Region, Technician, TechnicianSkill

JOB_TYPE_UNSKILLED = "job_type_unskilled"
REGION_UNCOVERED = "region_uncovered"
REGION_UNKNOWN = "region_unknown"
TECHNICIAN_NO_SHIFTS = "technician_no_shifts"
TECHNICIAN_NO_REGIONS = "technician_no_regions"
TECHNICIAN_NO_SKILLS = "technician_no_skills"

TECHNICIAN_KINDS = frozenset({TECHNICIAN_NO_SHIFTS, TECHNICIAN_NO_REGIONS, TECHNICIAN_NO_SKILLS})


@dataclass(frozen=True)
class SetupProblem:
    """One gap: what it is about (`key`: an incident type, a region code or a technician id), the
    problem and its effect on booking in words, and where it is fixed (a back-office page, and the
    permission that page needs, so that the panel links only where the reader may go)."""

    kind: str
    key: str
    subject: str
    text: str
    effect: str
    fix_label: str
    fix_url: str
    fix_permission: str

    @property
    def sentence(self) -> str:
        return f"{self.text} {self.effect}"

    @property
    def as_cause(self) -> str:
        """The gap as the reason a job has no window (the slot engine's explanation)."""
        return f"{self.text} A setup gap: {self.fix_label[0].lower()}{self.fix_label[1:]} (see Setup health)."


def _admin_url(name: str, *args, **query: str) -> str:
    url = reverse(f"admin:{name}", args=args)
    return f"{url}?{urlencode(query)}" if query else url


def _job_type_unskilled(incident_type: str, name: str) -> SetupProblem:
    label = name or incident_type
    return SetupProblem(
        kind=JOB_TYPE_UNSKILLED,
        key=incident_type,
        subject=label,
        text=f"No active technician is skilled for {label}.",
        effect="The slot engine finds no window for these jobs.",
        fix_label="Add the skill to a technician",
        fix_url=_admin_url("technicians_technicianskill_add", incident_type=incident_type),
        fix_permission="technicians.add_technicianskill",
    )


def _sites_effect(site_count: int) -> str:
    if site_count == 0:
        return "No site is in it yet; jobs there would get no window."
    return f"Jobs at its {site_count} site{'' if site_count == 1 else 's'} get no window."


def _region_uncovered(region: Region, site_count: int) -> SetupProblem:
    return SetupProblem(
        kind=REGION_UNCOVERED,
        key=region.code.upper(),
        subject=region.name or region.code,
        text=f"No active technician covers {region.name or region.code}.",
        effect=_sites_effect(site_count),
        fix_label="Give a technician this region",
        fix_url=_admin_url("technicians_technician_changelist"),
        fix_permission="technicians.change_technician",
    )


def _region_unknown(code: str, site_count: int) -> SetupProblem:
    # A site names its region by code; a code no Region has can never be covered by anyone.
    return SetupProblem(
        kind=REGION_UNKNOWN,
        key=code,
        subject=code,
        text=f"Sites name the region {code}, which does not exist, so no technician covers it.",
        effect=_sites_effect(site_count),
        fix_label="Add the region",
        fix_url=_admin_url("technicians_region_add", code=code),
        fix_permission="technicians.add_region",
    )


def _technician_problems(technician: Technician, *, has_shifts: bool) -> list[SetupProblem]:
    name, key = technician.display_name, str(technician.pk)
    page = _admin_url("technicians_technician_change", technician.pk)
    problems = []
    if not has_shifts:
        problems.append(
            SetupProblem(
                kind=TECHNICIAN_NO_SHIFTS,
                key=key,
                subject=name,
                text=f"{name} has no shifts.",
                effect="The slot engine never offers them for a job.",
                fix_label="Add a shift",
                fix_url=_admin_url("scheduling_shift_add", technician=key),
                fix_permission="scheduling.add_shift",
            )
        )
    if not technician.has_regions:
        problems.append(
            SetupProblem(
                kind=TECHNICIAN_NO_REGIONS,
                key=key,
                subject=name,
                text=f"{name} covers no region.",
                effect="They are offered only for sites that name no region.",
                fix_label="Give them regions",
                fix_url=page,
                fix_permission="technicians.change_technician",
            )
        )
    if not technician.has_skills:
        problems.append(
            SetupProblem(
                kind=TECHNICIAN_NO_SKILLS,
                key=key,
                subject=name,
                text=f"{name} has no skills.",
                effect="The slot engine offers them for no job type.",
                fix_label="Add their skills",
                fix_url=page,
                fix_permission="technicians.add_technicianskill",
            )
        )
    return problems


def _site_counts_by_region() -> dict[str, int]:
    """How many sites name each service region, by upper-case code (one grouped query)."""
    counts: dict[str, int] = {}
    rows = Site.objects.exclude(service_region="").order_by().values("service_region").annotate(n=Count("pk"))
    for row in rows:
        code = row["service_region"].strip().upper()
        if code:
            counts[code] = counts.get(code, 0) + row["n"]
    return counts


def setup_problems(*, technician_ids: Iterable[object] | None = None) -> list[SetupProblem]:
    """Every setup gap, job types and regions first, then technicians by name (six queries).
    `technician_ids` narrows the technicians' own problems to those (the job type and region
    gaps are always the whole company's)."""
    problems: list[SetupProblem] = []

    # Skills are stored as typed; the slot engine matches them case-insensitively, and so does this.
    names = catalog.incident_type_names()
    skilled = {
        kind.strip().upper()
        for kind in TechnicianSkill.objects.filter(technician__is_active=True)
        .order_by()
        .values_list("incident_type", flat=True)
        .distinct()
    }
    for incident_type in sorted(names):
        if incident_type.upper() not in skilled:
            problems.append(_job_type_unskilled(incident_type, names[incident_type]))

    sites = _site_counts_by_region()
    covered = Technician.objects.filter(is_active=True, regions=OuterRef("pk"))
    regions = list(Region.objects.annotate(covered=Exists(covered)).order_by("name", "code"))
    for region in regions:
        if not region.covered:
            problems.append(_region_uncovered(region, sites.get(region.code.upper(), 0)))
    known = {region.code.upper() for region in regions}
    for code in sorted(set(sites) - known):
        problems.append(_region_unknown(code, sites[code]))

    technicians = Technician.objects.filter(is_active=True)
    if technician_ids is not None:
        technicians = technicians.filter(pk__in=list(technician_ids))
    technicians = list(
        technicians.annotate(
            has_regions=Exists(Region.objects.filter(technicians=OuterRef("pk"))),
            has_skills=Exists(TechnicianSkill.objects.filter(technician=OuterRef("pk"))),
        )
        .only("id", "display_name")
        .order_by("display_name", "id")
    )
    with_shifts = catalog.technicians_with_shifts([t.pk for t in technicians])
    for technician in technicians:
        problems.extend(_technician_problems(technician, has_shifts=technician.pk in with_shifts))
    return problems


def job_setup_gap(*, incident_type: str = "", region_code: str = "") -> SetupProblem | None:
    """The setup gap that keeps every technician from a job, or None: no active technician skilled
    for its type (looked at first), else none covering its region (at most four queries)."""
    kind = (incident_type or "").strip().upper()
    if kind and not TechnicianSkill.objects.filter(technician__is_active=True, incident_type__iexact=kind).exists():
        return _job_type_unskilled(kind, catalog.incident_type_names().get(kind, ""))
    code = (region_code or "").strip().upper()
    if code and not Technician.objects.filter(is_active=True, regions__code__iexact=code).exists():
        site_count = Site.objects.filter(service_region__iexact=code).count()
        region = Region.objects.filter(code__iexact=code).first()
        return _region_uncovered(region, site_count) if region else _region_unknown(code, site_count)
    return None
