"""The demo company: a door-service contractor working the San Francisco Bay Area.

Everything here is keyed on stable names (fixed UUIDs derived with uuid5, usernames, region
codes), so loading it again finds the rows it made before and writes nothing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone

from dispatch.closeout.billing import billing_settings
from dispatch.closeout.models import IncidentTemplate, PriceBookItem, TaxRate
from dispatch.common import geocode
from dispatch.common.roles import Role
from dispatch.intake.service_area import service_area_settings
from dispatch.scheduling.models import Shift, TimeOff
from dispatch.technicians.models import Region, Technician, TechnicianSkill
from dispatch.tickets.models import Account, Asset, Contact, Site

# Namespace of every demo UUID; changing it would make the demo load a second company.
DEMO_NAMESPACE = uuid.UUID("6f0d3c1e-5b7a-4d8e-9c21-0a4e7b93d5f2")
DEMO_MARKER = "Demo data (manage.py load_demo)."
TZ = "America/Los_Angeles"


def demo_uuid(kind: str, key: str) -> uuid.UUID:
    return uuid.uuid5(DEMO_NAMESPACE, f"{kind}:{key}")


REGIONS = {
    "SF": "San Francisco",
    "EAST_BAY": "East Bay",
    "PENINSULA": "Peninsula",
    "SOUTH_BAY": "South Bay",
}


@dataclass(frozen=True)
class SiteSpec:
    key: str
    name: str
    address_line1: str
    city: str
    postal_code: str
    lat: str
    lng: str
    service_region: str
    access_instructions: str
    hours: str
    address_line2: str = ""
    access_code: str = ""


@dataclass(frozen=True)
class ContactSpec:
    name: str
    phone: str
    email: str
    site: str = ""
    is_approver: bool = False


@dataclass(frozen=True)
class AssetSpec:
    key: str
    site: str
    name: str
    make: str
    model: str
    serial: str
    warranty_until: date | None = None


@dataclass(frozen=True)
class AccountSpec:
    key: str
    name: str
    kind: str
    billing_email: str
    about: str
    sites: tuple[SiteSpec, ...]
    contacts: tuple[ContactSpec, ...]
    assets: tuple[AssetSpec, ...] = ()


ACCOUNTS: tuple[AccountSpec, ...] = (
    AccountSpec(
        key="bayview",
        name="Bayview Property Management",
        kind=Account.Kind.COMPANY,
        billing_email="ap@bayviewpm.example.com",
        about="Property manager: mixed-use and apartment buildings in Oakland and Berkeley.",
        sites=(
            SiteSpec(
                key="lakeside",
                name="Lakeside Commons",
                address_line1="1200 Lakeshore Ave",
                city="Oakland",
                postal_code="94606",
                lat="37.809420",
                lng="-122.250310",
                service_region="EAST_BAY",
                access_instructions="Leasing office on the ground floor opens at 9. Before that, call the on-site "
                "manager; lockbox on the loading-dock gate.",
                access_code="4471",
                hours="Mon–Fri 9:00–18:00, Sat 10:00–16:00",
            ),
            SiteSpec(
                key="shattuck",
                name="Shattuck Professional Building",
                address_line1="2150 Shattuck Ave",
                city="Berkeley",
                postal_code="94704",
                lat="37.869880",
                lng="-122.268050",
                service_region="EAST_BAY",
                access_instructions="Park in the Allston Way garage, level 2. Building engineer (room B12) signs "
                "contractors in and out.",
                hours="Mon–Fri 7:00–19:00",
            ),
            SiteSpec(
                key="grand",
                name="Grand Avenue Lofts",
                address_line1="3250 Grand Ave",
                city="Oakland",
                postal_code="94610",
                lat="37.813150",
                lng="-122.244620",
                service_region="EAST_BAY",
                access_instructions="Residential: knock at the garage door on Mandana Blvd, the super lets you in. "
                "No work in units before 8:30.",
                hours="Mon–Sat 8:30–17:00",
            ),
        ),
        contacts=(
            ContactSpec("Maria Delgado", "+15105550142", "maria.delgado@bayviewpm.example.com", is_approver=True),
            ContactSpec("Kevin Cho", "+15105550177", "kevin.cho@bayviewpm.example.com", site="lakeside"),
            ContactSpec("Tamika Brooks", "+15105550163", "tbrooks@bayviewpm.example.com", site="shattuck"),
        ),
        assets=(
            AssetSpec(
                "lakeside-lobby-slider",
                "lakeside",
                "Lobby automatic sliding door",
                "Stanley",
                "Dura-Glide 3000",
                "DG3-21-40718",
                date(2026, 9, 30),
            ),
            AssetSpec(
                "lakeside-garage-door", "lakeside", "Garage pedestrian door closer", "LCN", "4040XP", "LCN-88213"
            ),
            AssetSpec(
                "shattuck-entry",
                "shattuck",
                "Main entrance storefront door",
                "Kawneer",
                "350 Medium Stile",
                "KW350-19-5521",
            ),
            AssetSpec("grand-stair", "grand", "Stairwell fire door exit device", "Von Duprin", "99 Rim", "VD99-77314"),
        ),
    ),
    AccountSpec(
        key="goldengate",
        name="Golden Gate Residential Partners",
        kind=Account.Kind.COMPANY,
        billing_email="invoices@ggresidential.example.com",
        about="Property manager: high-rise and mid-rise rentals in San Francisco.",
        sites=(
            SiteSpec(
                key="hayes",
                name="Hayes Valley Flats",
                address_line1="450 Hayes St",
                city="San Francisco",
                postal_code="94102",
                lat="37.776620",
                lng="-122.424710",
                service_region="SF",
                access_instructions="Loading zone on Octavia for 30 minutes. Front desk has the master key; sign "
                "the contractor log.",
                hours="Front desk 24/7",
            ),
            SiteSpec(
                key="missionbay",
                name="Mission Bay Tower",
                address_line1="255 Berry St",
                city="San Francisco",
                postal_code="94158",
                lat="37.776030",
                lng="-122.393480",
                service_region="SF",
                access_instructions="Service entrance on 4th St. Concierge issues a temporary fob; return it at "
                "checkout.",
                access_code="C-2290",
                hours="Concierge 7:00–22:00",
            ),
        ),
        contacts=(
            ContactSpec("Aaron Feldman", "+14155550118", "afeldman@ggresidential.example.com", is_approver=True),
            ContactSpec("Lucia Ferreira", "+14155550136", "lferreira@ggresidential.example.com", site="hayes"),
            ContactSpec("Devon Price", "+14155550191", "dprice@ggresidential.example.com", site="missionbay"),
        ),
        assets=(
            AssetSpec("hayes-front", "hayes", "Front entry door closer", "Norton", "7500", "NRT-7500-3391"),
            AssetSpec(
                "missionbay-lobby",
                "missionbay",
                "Lobby automatic sliding door",
                "Horton",
                "2000 Series",
                "HRT-2K-60412",
                date(2027, 3, 31),
            ),
            AssetSpec(
                "missionbay-garage", "missionbay", "Garage vestibule door", "Schlage", "ND80 lockset", "SCH-ND80-1187"
            ),
        ),
    ),
    AccountSpec(
        key="stbrendan",
        name="St. Brendan Medical Center",
        kind=Account.Kind.COMPANY,
        billing_email="facilities.ap@stbrendan.example.org",
        about="Hospital: main campus in San Mateo and an outpatient clinic in Redwood City. Patient areas "
        "need a security escort.",
        sites=(
            SiteSpec(
                key="main",
                name="Main Campus",
                address_line1="1800 El Camino Real",
                city="San Mateo",
                postal_code="94402",
                lat="37.551480",
                lng="-122.313020",
                service_region="PENINSULA",
                access_instructions="Check in at the security desk by the emergency entrance. Badge escort required "
                "in patient areas. Never prop ER doors open.",
                hours="24/7 (non-urgent work 7:00–17:00)",
            ),
            SiteSpec(
                key="clinic",
                name="Redwood City Outpatient Clinic",
                address_line1="2500 Middlefield Rd",
                city="Redwood City",
                postal_code="94063",
                lat="37.479680",
                lng="-122.215640",
                service_region="PENINSULA",
                access_instructions="Use the staff entrance at the rear lot; ring the facilities bell.",
                hours="Mon–Fri 7:30–18:00",
            ),
        ),
        contacts=(
            ContactSpec("Dr. Helen Park", "+16505550104", "hpark@stbrendan.example.org", is_approver=True),
            ContactSpec("Rob Martinez", "+16505550150", "rmartinez@stbrendan.example.org", site="main"),
            ContactSpec("Janelle Wu", "+16505550187", "jwu@stbrendan.example.org", site="clinic"),
        ),
        assets=(
            AssetSpec(
                "main-er-slider",
                "main",
                "Emergency entrance automatic sliding door",
                "ASSA ABLOY",
                "SL500",
                "AA-SL5-30877",
                date(2026, 12, 31),
            ),
            AssetSpec(
                "main-icu-swing",
                "main",
                "ICU corridor automatic swing operator",
                "LCN",
                "9540 Senior Swing",
                "LCN-9540-11802",
            ),
            AssetSpec("clinic-entry", "clinic", "Clinic entrance door closer", "LCN", "4040XP", "LCN-44190"),
        ),
    ),
    AccountSpec(
        key="freshway",
        name="FreshWay Markets",
        kind=Account.Kind.COMPANY,
        billing_email="ap@freshwaymarkets.example.com",
        about="Grocery chain: 14 stores in the South Bay and East Bay. Doors must work before 7:00 opening.",
        sites=(
            SiteSpec(
                key="fremont",
                name="FreshWay #112 Fremont",
                address_line1="39200 Paseo Padre Pkwy",
                city="Fremont",
                postal_code="94538",
                lat="37.548530",
                lng="-121.988610",
                service_region="EAST_BAY",
                access_instructions="Ask for the manager on duty at the customer service desk. Receiving door at "
                "the back is open 5:00–11:00.",
                hours="Daily 7:00–22:00",
            ),
            SiteSpec(
                key="sanjose",
                name="FreshWay #118 San Jose",
                address_line1="1650 Saratoga Ave",
                city="San Jose",
                postal_code="95129",
                lat="37.293540",
                lng="-121.988020",
                service_region="SOUTH_BAY",
                access_instructions="Park at the north side of the lot. Manager on duty at the service desk.",
                hours="Daily 7:00–23:00",
            ),
            SiteSpec(
                key="sunnyvale",
                name="FreshWay #121 Sunnyvale",
                address_line1="860 Old San Francisco Rd",
                city="Sunnyvale",
                postal_code="94086",
                lat="37.370020",
                lng="-122.023010",
                service_region="SOUTH_BAY",
                access_instructions="Front entrance; the store manager's office is behind the bakery.",
                hours="Daily 6:30–22:00",
            ),
        ),
        contacts=(
            ContactSpec("Greg Holloway", "+14085550125", "gholloway@freshwaymarkets.example.com", is_approver=True),
            ContactSpec("Ana Souza", "+15105550199", "asouza@freshwaymarkets.example.com", site="fremont"),
            ContactSpec("Victor Tran", "+14085550168", "vtran@freshwaymarkets.example.com", site="sanjose"),
            ContactSpec("Nicole Adams", "+14085550112", "nadams@freshwaymarkets.example.com", site="sunnyvale"),
        ),
        assets=(
            AssetSpec(
                "fremont-in",
                "fremont",
                "Entrance automatic sliding door (IN)",
                "Stanley",
                "Dura-Glide 2000",
                "DG2-18-22931",
            ),
            AssetSpec(
                "fremont-out",
                "fremont",
                "Exit automatic sliding door (OUT)",
                "Stanley",
                "Dura-Glide 2000",
                "DG2-18-22932",
            ),
            AssetSpec(
                "sanjose-in",
                "sanjose",
                "Entrance automatic sliding door",
                "Horton",
                "2000 Series",
                "HRT-2K-51870",
                date(2026, 6, 30),
            ),
            AssetSpec("sunnyvale-receiving", "sunnyvale", "Receiving door closer", "Norton", "8500", "NRT-8500-6620"),
        ),
    ),
    AccountSpec(
        key="nakamura",
        name="Nakamura household",
        kind=Account.Kind.HOUSEHOLD,
        billing_email="ken.nakamura@example.net",
        about="Homeowners in Alameda; pay by card on completion.",
        sites=(
            SiteSpec(
                key="home",
                name="Home",
                address_line1="2714 Alameda Ave",
                city="Alameda",
                postal_code="94501",
                lat="37.768040",
                lng="-122.242010",
                service_region="EAST_BAY",
                access_instructions="Side gate on the left; friendly dog in the yard. Call Ken 10 minutes out.",
                access_code="1952",
                hours="Weekdays after 15:00, weekends any time",
            ),
        ),
        contacts=(
            ContactSpec("Ken Nakamura", "+15105550181", "ken.nakamura@example.net", site="home", is_approver=True),
            ContactSpec("Emi Nakamura", "+15105550182", "emi.nakamura@example.net", site="home"),
        ),
        assets=(AssetSpec("home-front", "home", "Front door lockset", "Schlage", "B60 deadbolt + F-series lever", ""),),
    ),
)


@dataclass(frozen=True)
class TechnicianSpec:
    key: str
    username: str
    display_name: str
    phone: str
    regions: tuple[str, ...]
    home: tuple[str, str]
    skills: dict[str, int]


TECHNICIANS: tuple[TechnicianSpec, ...] = (
    TechnicianSpec(
        "dana",
        "tech.dana",
        "Dana Whitfield",
        "+15105550110",
        ("EAST_BAY", "SF"),
        ("37.804360", "-122.271110"),
        {
            "DOOR_WONT_LATCH": 5,
            "CLOSER_LEAKING_OR_SLAMMING": 4,
            "HARDWARE_REPLACEMENT": 4,
            "CANNOT_SECURE_ENTRY": 3,
            "AUTO_OPERATOR_FAULT": 3,
        },
    ),
    TechnicianSpec(
        "marcus",
        "tech.marcus",
        "Marcus Reyes",
        "+14155550121",
        ("SF", "PENINSULA"),
        ("37.687920", "-122.470210"),
        {"AUTO_OPERATOR_FAULT": 5, "FRAME_OR_GLASS_DAMAGE": 3, "DOOR_WONT_LATCH": 3, "CLOSER_LEAKING_OR_SLAMMING": 3},
    ),
    TechnicianSpec(
        "priya",
        "tech.priya",
        "Priya Raman",
        "+14085550133",
        ("SOUTH_BAY", "PENINSULA"),
        ("37.338210", "-121.886330"),
        {"AUTO_OPERATOR_FAULT": 4, "DOOR_WONT_LATCH": 3, "HARDWARE_REPLACEMENT": 3, "CLOSER_LEAKING_OR_SLAMMING": 3},
    ),
    TechnicianSpec(
        "luis",
        "tech.luis",
        "Luis Ortega",
        "+15105550144",
        ("EAST_BAY", "SOUTH_BAY"),
        ("37.668820", "-122.080800"),
        {"FRAME_OR_GLASS_DAMAGE": 5, "CANNOT_SECURE_ENTRY": 5, "HARDWARE_REPLACEMENT": 3, "AUTO_OPERATOR_FAULT": 3},
    ),
    TechnicianSpec(
        "kim",
        "tech.kim",
        "Kim Nguyen",
        "+16505550155",
        ("SF", "PENINSULA"),
        ("37.563000", "-122.325530"),
        {
            "CLOSER_LEAKING_OR_SLAMMING": 5,
            "HARDWARE_REPLACEMENT": 5,
            "DOOR_WONT_LATCH": 4,
            "CANNOT_SECURE_ENTRY": 3,
            "AUTO_OPERATOR_FAULT": 3,
        },
    ),
    TechnicianSpec(
        "sam",
        "tech.sam",
        "Sam Okafor",
        "+15105550166",
        ("EAST_BAY",),
        ("37.871590", "-122.272750"),
        {"AUTO_OPERATOR_FAULT": 3, "CLOSER_LEAKING_OR_SLAMMING": 3, "DOOR_WONT_LATCH": 3},
    ),
    TechnicianSpec(
        "jordan",
        "tech.jordan",
        "Jordan Lee",
        "+14085550177",
        ("SOUTH_BAY",),
        ("37.368830", "-122.036350"),
        {"HARDWARE_REPLACEMENT": 2, "DOOR_WONT_LATCH": 2, "FRAME_OR_GLASS_DAMAGE": 2},
    ),
)
TECHNICIAN_PASSWORD = "technician-demo"

WEEKDAYS = (0, 1, 2, 3, 4)
SATURDAY = 5
# Working hours per technician (weekdays, start, end) in the company's timezone: most work
# Monday to Friday 7:00–16:00, Dana and Luis also take Saturday mornings, Jordan works the late
# shift for after-hours calls.
SHIFTS: dict[str, tuple[tuple[tuple[int, ...], str, str], ...]] = {
    "dana": ((WEEKDAYS, "07:00", "16:00"), ((SATURDAY,), "08:00", "12:00")),
    "marcus": ((WEEKDAYS, "07:00", "16:00"),),
    "priya": ((WEEKDAYS, "07:00", "16:00"),),
    "luis": ((WEEKDAYS, "07:00", "16:00"), ((SATURDAY,), "08:00", "13:00")),
    "kim": ((WEEKDAYS, "07:30", "16:30"),),
    "sam": ((WEEKDAYS, "07:00", "16:00"),),
    "jordan": ((WEEKDAYS, "12:00", "21:00"),),
}
# (technician, first day after the first load, days, reason): planned time off.
TIME_OFF: tuple[tuple[str, int, int, str], ...] = (("priya", 4, 2, "Manufacturer training: BEA sensors"),)


@dataclass(frozen=True)
class LoginSpec:
    username: str
    password: str
    role: Role
    first_name: str
    last_name: str
    superuser: bool = False


# The back-office logins printed by load_demo and listed in the README.
LOGINS: tuple[LoginSpec, ...] = (
    LoginSpec("dispatcher", "dispatcher-demo", Role.DISPATCHER, "Riley", "Morgan"),
    LoginSpec("admin", "admin-demo", Role.ADMIN, "Alex", "Kim", superuser=True),
    LoginSpec("qa", "qa-demo", Role.QA, "Quinn", "Alvarez"),
    LoginSpec("finance", "finance-demo", Role.FINANCE, "Frances", "Obi"),
    LoginSpec("approver", "approver-demo", Role.APPROVER, "Avery", "Santos"),
)


# (SKU, name, unit price in cents): the parts the demo jobs use.
PRICE_BOOK: tuple[tuple[str, str, int], ...] = (
    ("STRIKE-478-US26D", 'ANSI strike plate 4-7/8", satin chrome', 1850),
    ("CLOSER-LCN4040XP", "LCN 4040XP door closer, aluminum", 38900),
    ("ARM-LCN-HDPA", "LCN heavy-duty parallel arm", 9600),
    ("HINGE-45BB-US26D", '4-1/2" ball-bearing hinge, satin chrome', 2400),
    ("LEVER-SCH-ND-RHO", "Schlage ND lever trim, Rhodes", 14200),
    ("SENSOR-BEA-IXIO", "BEA IXIO-DT1 motion and presence sensor", 46500),
    ("BELT-DG-DRIVE", "Dura-Glide drive belt", 7800),
    ("CYL-MORTISE-SFIC", "Mortise cylinder, small-format IC core", 6400),
    ("GLASS-TEMP-14", 'Tempered glass lite 1/4", cut to size', 31000),
    ("LATCH-SCH-F-234", 'Schlage F-series spring latch, 2-3/4" backset', 3200),
    ("DEADBOLT-SCH-B60N", "Schlage B60N grade 1 deadbolt, satin chrome", 7900),
    ("HINGE-SET-45BB-3", 'Hinge set: three 4-1/2" ball-bearing hinges, satin chrome', 6900),
)


@dataclass
class Company:
    """The rows of the demo company, by the keys the stories use."""

    accounts: dict[str, Account] = field(default_factory=dict)
    sites: dict[str, Site] = field(default_factory=dict)
    assets: dict[str, Asset] = field(default_factory=dict)
    contacts: dict[str, list[Contact]] = field(default_factory=dict)
    technicians: dict[str, Technician] = field(default_factory=dict)
    users: dict[str, object] = field(default_factory=dict)


def _user_ensure(
    *, username: str, password: str, role: Role, first_name: str, last_name: str, email: str, superuser: bool = False
):
    """The demo user, created with its password and role group. A user of that name who already
    exists is left exactly as it is: the demo never resets someone's password or role."""
    User = get_user_model()
    user = User.objects.filter(username=username).first()
    if user is not None:
        return user
    user = User(
        username=username,
        first_name=first_name,
        last_name=last_name,
        email=email,
        is_staff=role not in (Role.TECHNICIAN, Role.AGENT, Role.CUSTOMER, Role.SYSTEM),
        is_superuser=superuser,
    )
    user.set_password(password)
    user.save()
    # A user's role is the group named after it (dispatch.common.roles.role_of_user).
    user.groups.add(Group.objects.get(name=role.value))
    return user


def company_load() -> Company:
    """Create (or find) regions, accounts, sites, contacts, assets, the price book, technicians and logins."""
    company = Company()
    for code, name in REGIONS.items():
        Region.objects.get_or_create(code=code, defaults={"name": name})

    for spec in ACCOUNTS:
        account, _ = Account.objects.get_or_create(
            pk=demo_uuid("account", spec.key),
            defaults={
                "name": spec.name,
                "kind": spec.kind,
                "billing_email": spec.billing_email,
                "notes": f"{spec.about}\n{DEMO_MARKER}",
            },
        )
        company.accounts[spec.key] = account
        for site_spec in spec.sites:
            key = f"{spec.key}.{site_spec.key}"
            site, _ = Site.objects.get_or_create(
                pk=demo_uuid("site", key),
                defaults={
                    "account": account,
                    "name": site_spec.name,
                    "address_line1": site_spec.address_line1,
                    "address_line2": site_spec.address_line2,
                    "city": site_spec.city,
                    "region": "CA",
                    "postal_code": site_spec.postal_code,
                    "country": "US",
                    "lat": Decimal(site_spec.lat),
                    "lng": Decimal(site_spec.lng),
                    # Read off a map for each demo site.
                    "geo_precision": geocode.PRECISION_ADDRESS,
                    "timezone": TZ,
                    "service_region": site_spec.service_region,
                    "access_instructions": site_spec.access_instructions,
                    "access_code": site_spec.access_code,
                    "hours": site_spec.hours,
                },
            )
            company.sites[key] = site
        contacts = []
        for contact_spec in spec.contacts:
            contact, _ = Contact.objects.get_or_create(
                pk=demo_uuid("contact", f"{spec.key}.{contact_spec.email}"),
                defaults={
                    "account": account,
                    "site": company.sites[f"{spec.key}.{contact_spec.site}"] if contact_spec.site else None,
                    "name": contact_spec.name,
                    "phone": contact_spec.phone,
                    "email": contact_spec.email,
                    "is_authorized_requester": True,
                    "is_approver": contact_spec.is_approver,
                },
            )
            contacts.append(contact)
        company.contacts[spec.key] = contacts
        for asset_spec in spec.assets:
            asset, _ = Asset.objects.get_or_create(
                pk=demo_uuid("asset", f"{spec.key}.{asset_spec.key}"),
                defaults={
                    "site": company.sites[f"{spec.key}.{asset_spec.site}"],
                    "name": asset_spec.name,
                    "make": asset_spec.make,
                    "model": asset_spec.model,
                    "serial": asset_spec.serial,
                    "warranty_until": asset_spec.warranty_until,
                },
            )
            company.assets[f"{spec.key}.{asset_spec.key}"] = asset

    for login in LOGINS:
        company.users[login.username] = _user_ensure(
            username=login.username,
            password=login.password,
            role=login.role,
            first_name=login.first_name,
            last_name=login.last_name,
            email=f"{login.username}@realdispatch.example.com",
            superuser=login.superuser,
        )

    for sku, name, unit_cents in PRICE_BOOK:
        PriceBookItem.objects.get_or_create(sku=sku, defaults={"name": name, "unit_cents": unit_cents})

    regions = {region.code: region for region in Region.objects.filter(code__in=REGIONS)}
    for spec in TECHNICIANS:
        first, last = spec.display_name.split(" ", 1)
        user = _user_ensure(
            username=spec.username,
            password=TECHNICIAN_PASSWORD,
            role=Role.TECHNICIAN,
            first_name=first,
            last_name=last,
            email=f"{spec.key}@realdispatch.example.com",
        )
        company.users[spec.username] = user
        technician = Technician.objects.filter(user=user).first()
        if technician is not None and not technician.phone:
            # Their phone is how a "Y" by SMS is known to be theirs (dispatch.scheduling.tech_replies).
            technician.phone = spec.phone
            technician.save(update_fields=["phone"])
        technician = technician or Technician.objects.create(
            pk=demo_uuid("technician", spec.key),
            user=user,
            display_name=spec.display_name,
            phone=spec.phone,
            home_lat=Decimal(spec.home[0]),
            home_lng=Decimal(spec.home[1]),
            is_active=True,
        )
        have = set(technician.regions.values_list("code", flat=True))
        missing = [regions[code] for code in spec.regions if code not in have]
        if missing:
            technician.regions.add(*missing)
        for incident_type, level in spec.skills.items():
            TechnicianSkill.objects.get_or_create(
                technician=technician, incident_type=incident_type, defaults={"level": level}
            )
        company.technicians[spec.key] = technician
    _working_time_load(company)
    _billing_load(company)
    _service_area_load()
    return company


# Sales tax by county, as a Bay Area door company files it (labor is not taxed in California).
TAX_RATES = (
    ("CA-ALAMEDA", "Alameda County", 0, 1025, False),
    ("CA-SANFRANCISCO", "San Francisco", 0, 863, False),
    ("CA-SANMATEO", "San Mateo County", 0, 938, False),
    ("CA-SANTACLARA", "Santa Clara County", 0, 913, True),
)
COUNTY_OF_CITY = {
    "Oakland": "CA-ALAMEDA",
    "Berkeley": "CA-ALAMEDA",
    "Fremont": "CA-ALAMEDA",
    "Alameda": "CA-ALAMEDA",
    "San Francisco": "CA-SANFRANCISCO",
    "San Mateo": "CA-SANMATEO",
    "Redwood City": "CA-SANMATEO",
}
# Getting a technician and a van to the door, by job type; an emergency callout costs more.
TRIP_CHARGES = {"CANNOT_SECURE_ENTRY": 9500, "AUTO_OPERATOR_FAULT": 6500}
DEFAULT_TRIP_CHARGE_CENTS = 4500


def _billing_load(company: Company) -> None:
    """The company's billing rules: invoice header, rates, business hours, trip charges and tax."""
    profile = billing_settings()
    if not profile.company_address:
        profile.company_address = "2150 Adeline St, Oakland, CA 94607"
        profile.company_phone = "(510) 555-0100"
        profile.company_email = "billing@realdispatch.example.com"
        profile.default_trip_charge_cents = DEFAULT_TRIP_CHARGE_CENTS
        profile.invoice_terms = (
            "Payment due within 30 days. Pay by ACH or check to Real Dispatch Door Service; "
            "quote the invoice number. Questions: billing@realdispatch.example.com."
        )
        profile.save()
    for jurisdiction, name, labor_bps, parts_bps, is_default in TAX_RATES:
        TaxRate.objects.get_or_create(
            jurisdiction=jurisdiction,
            defaults={"name": name, "labor_bps": labor_bps, "parts_bps": parts_bps, "is_default": is_default},
        )
    for incident_type, cents in TRIP_CHARGES.items():
        IncidentTemplate.objects.filter(incident_type=incident_type, trip_charge_cents__isnull=True).update(
            trip_charge_cents=cents
        )
    for site in company.sites.values():
        jurisdiction = COUNTY_OF_CITY.get(site.city, "")
        if jurisdiction and not site.tax_jurisdiction:
            site.tax_jurisdiction = jurisdiction
            site.save(update_fields=["tax_jurisdiction"])


# The Bay Area by its ZIP code prefixes: San Francisco and the Peninsula (940, 941, 943, 944), the
# East Bay (945 to 948), the South Bay (950, 951). Several cities: a street without one is asked about.
SERVICE_AREA = "940; 941; 943; 944; 945; 946; 947; 948; 950; 951"


def _service_area_load() -> None:
    """Where the demo company works, unless someone has already set it in the admin."""
    row = service_area_settings()
    if not row.places.strip():
        row.places = SERVICE_AREA
        row.save()


def _working_time_load(company: Company) -> None:
    """Shifts and planned time off of the demo technicians (found again by their fixed ids)."""
    for key, shifts in SHIFTS.items():
        technician = company.technicians[key]
        for weekdays, start, end in shifts:
            for weekday in weekdays:
                Shift.objects.get_or_create(
                    pk=demo_uuid("shift", f"{key}.{weekday}.{start}"),
                    defaults={
                        "technician": technician,
                        "weekday": weekday,
                        "start_time": time.fromisoformat(start),
                        "end_time": time.fromisoformat(end),
                        "timezone": TZ,
                    },
                )
    zone = ZoneInfo(TZ)
    today = timezone.now().astimezone(zone).date()
    for key, first_day, days, reason in TIME_OFF:
        # Dated from the first load (a later load finds the row by its id and leaves it).
        start = datetime.combine(today + timedelta(days=first_day), time(0), tzinfo=zone)
        TimeOff.objects.get_or_create(
            pk=demo_uuid("timeoff", f"{key}.{reason}"),
            defaults={
                "technician": company.technicians[key],
                "start": start,
                "end": start + timedelta(days=days),
                "reason": reason,
                "created_by": "load_demo",
            },
        )
