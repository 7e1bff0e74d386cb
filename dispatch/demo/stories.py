"""The demo tickets, told as stories: who called about what, where, and how far the job got.

Each story is a list of steps; each step is one business action that the walker in
`services.py` turns into one service call. `route(...)` spells out the usual path to a state;
stories with a twist (missing details, an emergency, an approval, a hold) list their own steps.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dispatch.tickets.states import TicketState


@dataclass(frozen=True)
class Step:
    action: str
    # Who acts: "dispatcher", "agent", "tech" (the story's technician), "qa", "finance", "approver".
    by: str = "dispatcher"
    options: dict = field(default_factory=dict)


def step(action: str, by: str = "dispatcher", **options) -> Step:
    return Step(action=action, by=by, options=options)


# The usual path through the lifecycle, in order; a story stops after the step that reaches its state.
_USUAL: tuple[tuple[str, Step], ...] = (
    (TicketState.NEW, step("create", by="agent")),
    (TicketState.READY_TO_SCHEDULE, step("triage", by="agent", outcome=TicketState.READY_TO_SCHEDULE)),
    (TicketState.SCHEDULE_PROPOSED, step("propose", by="agent")),
    (TicketState.SCHEDULED, step("confirm")),
    (TicketState.DISPATCHED, step("dispatch")),
    (TicketState.IN_PROGRESS, step("check_in", by="tech")),
    (TicketState.COMPLETED_PENDING_VERIFICATION, step("complete", by="tech")),
    (TicketState.VERIFIED, step("verify", by="qa")),
    (TicketState.INVOICED, step("invoice", by="finance")),
    (TicketState.CLOSED, step("close", by="finance")),
)


def route(until: str, *, created_by: str = "agent", after: str | None = None) -> tuple[Step, ...]:
    """The usual steps from creation to `until` (creation by an agent reading the customer's message,
    unless `created_by` says otherwise), or only those after the one reaching `after`. Completion
    is preceded by the evidence the template asks for and the parts and labor the invoice bills."""
    steps: list[Step] = []
    for state, usual in _USUAL:
        if usual.action == "create":
            usual = step("create", by=created_by)
        if usual.action == "complete":
            steps += [step("evidence", by="tech"), step("parts", by="tech"), step("labor", by="tech")]
        if usual.action == "close":
            # Finance approves the invoice before the job closes: the customer is emailed both documents.
            steps.append(step("approve_invoice", by="finance"))
        steps.append(usual)
        if state == after:
            steps = []
        if state == until:
            return tuple(steps)
    raise ValueError(f"The usual route does not reach {until}.")


@dataclass(frozen=True)
class Story:
    key: str
    account: str
    site: str  # "<account>.<site>" key in company.ACCOUNTS
    summary: str
    description: str
    incident_type: str
    priority: str
    ends_in: str
    steps: tuple[Step, ...]
    contact: str = ""  # contact email; default: the account's first contact at the site, else its first
    asset: str = ""  # "<account>.<asset>" key
    tech: str = ""  # technician key
    # When the work is booked: days from today (site time) and the local start time.
    day: int = 0
    at: str = "09:00"
    nte_cents: int | None = None
    # Parts used, as (price book SKU, quantity); default: the usual part for the incident type.
    parts: tuple[tuple[str, int], ...] | None = None


STORIES: tuple[Story, ...] = (
    # --- just in ---------------------------------------------------------------------------
    Story(
        key="nakamura-deadbolt",
        account="nakamura",
        site="nakamura.home",
        asset="nakamura.home-front",
        summary="Front door deadbolt hard to turn, door won't lock",
        description="SMS from Ken: 'Our front door deadbolt barely turns and tonight it wouldn't lock at all. "
        "Can someone come this week? Evenings are best.'",
        incident_type="DOOR_WONT_LATCH",
        priority="URGENT",
        ends_in=TicketState.NEW,
        steps=route(TicketState.NEW),
    ),
    Story(
        key="sunnyvale-receiving-closer",
        account="freshway",
        site="freshway.sunnyvale",
        asset="freshway.sunnyvale-receiving",
        summary="Receiving door closer leaking oil onto the dock",
        description="Store manager called: oil drips from the closer arm at the receiving door; door still "
        "closes but slams.",
        incident_type="CLOSER_LEAKING_OR_SLAMMING",
        priority="ROUTINE",
        ends_in=TicketState.NEW,
        steps=route(TicketState.NEW, created_by="dispatcher"),
    ),
    # --- waiting on the customer -----------------------------------------------------------------
    Story(
        key="grand-broken-door",
        account="bayview",
        site="bayview.grand",
        summary="Resident reports a 'broken door' in the building",
        description="Email from a resident: 'the door by the mailboxes is broken again'. No unit number, no "
        "description of the fault.",
        incident_type="DOOR_WONT_LATCH",
        priority="ROUTINE",
        ends_in=TicketState.NEEDS_INFO,
        steps=(
            step("create", by="agent"),
            step(
                "request_info",
                by="agent",
                question="Which door is it (mailroom entry or the stair door), and what does it do: not closing, "
                "not latching, or hard to open? A photo helps.",
            ),
        ),
    ),
    Story(
        key="hayes-intercom-door",
        account="goldengate",
        site="goldengate.hayes",
        asset="goldengate.hayes-front",
        summary="Front entry door not closing fully after intercom buzz-in",
        description="Front desk says the entry door stays a few inches open after visitors are buzzed in.",
        incident_type="CLOSER_LEAKING_OR_SLAMMING",
        priority="ROUTINE",
        ends_in=TicketState.NEEDS_INFO,
        steps=(
            step("create", by="agent"),
            step(
                "request_info",
                by="agent",
                question="Does the door stop short every time or only in wind? Is the closer body leaking oil?",
            ),
        ),
    ),
    # --- triage and approvals -----------------------------------------------------------------
    Story(
        key="shattuck-suite-lever",
        account="bayview",
        site="bayview.shattuck",
        summary="Suite 300 lever handle loose and drooping",
        description="Tenant in suite 300: the office door lever droops and wobbles; latch still works.",
        incident_type="HARDWARE_REPLACEMENT",
        priority="ROUTINE",
        ends_in=TicketState.TRIAGED,
        steps=(step("create", by="agent"), step("triage", outcome=TicketState.TRIAGED)),
    ),
    Story(
        key="clinic-closer-replacement",
        account="stbrendan",
        site="stbrendan.clinic",
        asset="stbrendan.clinic-entry",
        summary="Entrance closer worn out: replace closer and arm",
        description="Facilities asks for a replacement of the clinic entrance closer (hydraulics gone, door "
        "slams). Quote exceeds the standing NTE of $450.",
        incident_type="CLOSER_LEAKING_OR_SLAMMING",
        priority="ROUTINE",
        ends_in=TicketState.APPROVAL_REQUIRED,
        nte_cents=45000,
        steps=(
            step("create", by="dispatcher"),
            step(
                "triage",
                outcome=TicketState.APPROVAL_REQUIRED,
                approval_amount_delta_cents=38000,
                approval_reason="Closer plus heavy-duty arm and labour come to $830, above the $450 NTE.",
            ),
        ),
    ),
    Story(
        key="sanjose-operator-motor",
        account="freshway",
        site="freshway.sanjose",
        asset="freshway.sanjose-in",
        summary="Entrance slider opens slowly and stalls halfway",
        description="Store #118: the entrance door hesitates and stalls half open during the morning rush.",
        incident_type="AUTO_OPERATOR_FAULT",
        priority="URGENT",
        ends_in=TicketState.APPROVAL_REQUIRED,
        tech="priya",
        day=0,
        at="08:00",
        nte_cents=60000,
        steps=route(TicketState.IN_PROGRESS)
        + (
            step(
                "request_change",
                by="tech",
                approval_type="NTE_INCREASE",
                amount_delta_cents=95000,
                reason="Operator motor gearbox is stripped; replacement motor and gearbox $1,550 installed.",
            ),
        ),
    ),
    # --- ready to book ------------------------------------------------------------------------
    Story(
        key="missionbay-garage-lockset",
        account="goldengate",
        site="goldengate.missionbay",
        asset="goldengate.missionbay-garage",
        summary="Garage vestibule lockset sticks, residents getting locked out",
        description="Concierge reports three lock-outs this week at the garage vestibule door.",
        incident_type="HARDWARE_REPLACEMENT",
        priority="URGENT",
        ends_in=TicketState.READY_TO_SCHEDULE,
        steps=route(TicketState.READY_TO_SCHEDULE),
    ),
    Story(
        key="lakeside-garage-closer",
        account="bayview",
        site="bayview.lakeside",
        asset="bayview.lakeside-garage-door",
        summary="Garage pedestrian door slams shut",
        description="Kevin Cho: the garage pedestrian door slams hard; a resident caught her fingers.",
        incident_type="CLOSER_LEAKING_OR_SLAMMING",
        priority="URGENT",
        ends_in=TicketState.READY_TO_SCHEDULE,
        steps=(step("create", by="dispatcher"), step("triage", outcome=TicketState.READY_TO_SCHEDULE)),
    ),
    # --- booking ------------------------------------------------------------------------------
    Story(
        key="hayes-closer-adjust",
        account="goldengate",
        site="goldengate.hayes",
        asset="goldengate.hayes-front",
        summary="Lobby closer needs adjustment, door drifts open",
        description="Door drifts open a few inches in the afternoon wind; front desk keeps pulling it shut.",
        incident_type="CLOSER_LEAKING_OR_SLAMMING",
        priority="ROUTINE",
        ends_in=TicketState.SCHEDULE_PROPOSED,
        tech="kim",
        day=1,
        at="10:00",
        steps=route(TicketState.SCHEDULE_PROPOSED),
    ),
    Story(
        key="main-icu-swing",
        account="stbrendan",
        site="stbrendan.main",
        asset="stbrendan.main-icu-swing",
        summary="ICU corridor swing door opens intermittently on its own",
        description="Nursing reports the ICU corridor automatic door cycles open with nobody near it, a few "
        "times an hour.",
        incident_type="AUTO_OPERATOR_FAULT",
        priority="URGENT",
        ends_in=TicketState.SCHEDULE_PROPOSED,
        tech="marcus",
        day=1,
        at="13:00",
        steps=route(TicketState.SCHEDULE_PROPOSED),
    ),
    Story(
        key="shattuck-storefront-drag",
        account="bayview",
        site="bayview.shattuck",
        asset="bayview.shattuck-entry",
        summary="Main entrance storefront door drags on the threshold",
        description="Door scrapes the threshold and needs a shove to latch; building engineer suspects a worn pivot.",
        incident_type="DOOR_WONT_LATCH",
        priority="ROUTINE",
        ends_in=TicketState.PENDING_CUSTOMER_CONFIRMATION,
        tech="sam",
        day=1,
        at="15:00",
        steps=route(TicketState.SCHEDULE_PROPOSED) + (step("schedule_hold", hold_reason="CUSTOMER_PENDING"),),
    ),
    Story(
        key="fremont-exit-sensor",
        account="freshway",
        site="freshway.fremont",
        asset="freshway.fremont-out",
        summary="Exit door sensor misses shoppers with carts",
        description="Exit slider sometimes does not open for shoppers pushing carts; no injuries yet.",
        incident_type="AUTO_OPERATOR_FAULT",
        priority="URGENT",
        ends_in=TicketState.SCHEDULED,
        tech="luis",
        day=1,
        at="07:30",
        steps=route(TicketState.SCHEDULED),
    ),
    Story(
        key="lakeside-lobby-noise",
        account="bayview",
        site="bayview.lakeside",
        asset="bayview.lakeside-lobby-slider",
        summary="Lobby sliding door grinding noise when opening",
        description="Residents hear a grinding noise from the lobby slider header; door still operates.",
        incident_type="AUTO_OPERATOR_FAULT",
        priority="ROUTINE",
        ends_in=TicketState.SCHEDULED,
        tech="dana",
        day=0,
        # Two hours of work: it ends by 15:30, inside her shift.
        at="13:30",
        steps=route(TicketState.SCHEDULED),
    ),
    Story(
        key="clinic-staff-door-latch",
        account="stbrendan",
        site="stbrendan.clinic",
        summary="Staff entrance door does not latch behind employees",
        description="Rear staff door swings shut but the latch misses the strike about half the time.",
        incident_type="DOOR_WONT_LATCH",
        priority="URGENT",
        ends_in=TicketState.SCHEDULED,
        tech="kim",
        day=1,
        at="08:00",
        steps=route(TicketState.SCHEDULED),
    ),
    Story(
        key="hayes-package-room-deadbolt",
        account="goldengate",
        site="goldengate.hayes",
        summary="Package room deadbolt hard to throw",
        description="Front desk: the package room deadbolt needs both hands to turn and sometimes will "
        "not throw at all; they want it replaced.",
        incident_type="HARDWARE_REPLACEMENT",
        priority="ROUTINE",
        ends_in=TicketState.SCHEDULED,
        tech="dana",
        day=1,
        at="10:00",
        parts=(("DEADBOLT-SCH-B60N", 1),),
        steps=route(TicketState.SCHEDULED),
    ),
    Story(
        key="shattuck-suite-hinges",
        account="bayview",
        site="bayview.shattuck",
        summary="Suite 210 door sags and rubs the frame",
        description="Tenant in suite 210: the office door drags on the frame at the top corner; hinges look worn.",
        incident_type="HARDWARE_REPLACEMENT",
        priority="ROUTINE",
        ends_in=TicketState.SCHEDULED,
        tech="dana",
        day=2,
        at="08:30",
        parts=(("HINGE-SET-45BB-3", 1),),
        steps=route(TicketState.SCHEDULED),
    ),
    # --- today on the road ----------------------------------------------------------------------
    Story(
        key="missionbay-lobby-stuck",
        account="goldengate",
        site="goldengate.missionbay",
        asset="goldengate.missionbay-lobby",
        summary="Lobby slider stuck half open",
        description="Lobby automatic door stuck about half open since 6am; concierge set it to manual.",
        incident_type="AUTO_OPERATOR_FAULT",
        priority="URGENT",
        ends_in=TicketState.DISPATCHED,
        tech="marcus",
        day=0,
        at="11:00",
        steps=route(TicketState.DISPATCHED),
    ),
    Story(
        key="sanjose-break-in",
        account="freshway",
        site="freshway.sanjose",
        summary="Front doors cannot be locked after attempted break-in",
        description="Night manager: someone pried the front doors overnight; the locks will not throw and the "
        "store cannot be secured.",
        incident_type="CANNOT_SECURE_ENTRY",
        priority="EMERGENCY",
        ends_in=TicketState.DISPATCHED,
        tech="luis",
        day=0,
        at="12:00",
        steps=(
            step("create", by="dispatcher"),
            step("triage", outcome=TicketState.TRIAGED),
            step(
                "dispatch",
                dispatch_mode="EMERGENCY_BYPASS",
                dispatch_rationale="Store cannot be secured; sending the nearest qualified technician now.",
            ),
        ),
    ),
    Story(
        key="main-er-slider",
        account="stbrendan",
        site="stbrendan.main",
        asset="stbrendan.main-er-slider",
        summary="ER entrance slider reopening and closing erratically",
        description="Security reports the ER sliding door reverses mid-close; breakaway panels were reset.",
        incident_type="AUTO_OPERATOR_FAULT",
        priority="URGENT",
        ends_in=TicketState.IN_PROGRESS,
        tech="priya",
        day=0,
        at="11:00",
        steps=route(TicketState.IN_PROGRESS),
    ),
    Story(
        key="grand-stair-exit-device",
        account="bayview",
        site="bayview.grand",
        asset="bayview.grand-stair",
        summary="Stairwell exit device not latching",
        description="Fire door to the stairwell does not latch; fire marshal inspection is next week.",
        incident_type="HARDWARE_REPLACEMENT",
        priority="URGENT",
        ends_in=TicketState.IN_PROGRESS,
        tech="dana",
        day=0,
        at="09:00",
        # Half done: the before photo is in, the after photo, the note and the signature are not.
        steps=route(TicketState.IN_PROGRESS) + (step("evidence", by="tech", keys=("photo_before_failed_hardware",)),),
    ),
    Story(
        key="lakeside-side-door-latch",
        account="bayview",
        site="bayview.lakeside",
        summary="Side entrance door latch sticks, door left unlocked",
        description="Kevin Cho: the side entrance by the bike room only latches when pulled hard; found "
        "unlocked twice this week.",
        incident_type="DOOR_WONT_LATCH",
        priority="URGENT",
        # Dispatched to Dana this morning; she has not acknowledged it yet.
        ends_in=TicketState.DISPATCHED,
        tech="dana",
        day=0,
        at="11:30",
        parts=(("LATCH-SCH-F-234", 1), ("STRIKE-478-US26D", 1)),
        steps=route(TicketState.DISPATCHED),
    ),
    Story(
        key="fremont-entrance-parts",
        account="freshway",
        site="freshway.fremont",
        asset="freshway.fremont-in",
        summary="Entrance slider belt slipping, door will not open fully",
        description="Entrance door opens only two feet; store using the exit door for both directions.",
        incident_type="AUTO_OPERATOR_FAULT",
        priority="URGENT",
        ends_in=TicketState.ON_HOLD,
        tech="sam",
        day=0,
        at="08:00",
        steps=route(TicketState.IN_PROGRESS)
        + (
            step(
                "hold",
                reason="Drive belt and pulley needed; parts ordered from the distributor, ETA tomorrow.",
                hold_reason="PARTS_ON_ORDER",
            ),
        ),
    ),
    # --- done, in the back office --------------------------------------------------------------
    Story(
        key="shattuck-restroom-closer",
        account="bayview",
        site="bayview.shattuck",
        summary="Second-floor restroom door slams",
        description="Tenants complain the restroom door slams loudly; closer adjusted last year.",
        incident_type="CLOSER_LEAKING_OR_SLAMMING",
        priority="ROUTINE",
        ends_in=TicketState.COMPLETED_PENDING_VERIFICATION,
        tech="dana",
        day=0,
        at="07:30",
        steps=route(TicketState.COMPLETED_PENDING_VERIFICATION),
    ),
    Story(
        key="clinic-lab-latch",
        account="stbrendan",
        site="stbrendan.clinic",
        summary="Lab door latch fails to catch",
        description="Lab door must be pulled hard to latch; strike plate looks loose.",
        incident_type="DOOR_WONT_LATCH",
        priority="ROUTINE",
        ends_in=TicketState.VERIFIED,
        tech="kim",
        day=-1,
        at="09:00",
        steps=route(TicketState.VERIFIED),
    ),
    Story(
        key="sunnyvale-front-hinge",
        account="freshway",
        site="freshway.sunnyvale",
        summary="Office door hinge cracked",
        description="Manager's office door sags; top hinge knuckle is cracked.",
        incident_type="HARDWARE_REPLACEMENT",
        priority="ROUTINE",
        ends_in=TicketState.INVOICED,
        tech="jordan",
        day=-1,
        at="13:00",
        nte_cents=25000,
        parts=(("HINGE-45BB-US26D", 3),),
        steps=route(TicketState.IN_PROGRESS)
        + (
            step(
                "request_change",
                by="tech",
                approval_type="NTE_INCREASE",
                amount_delta_cents=4800,
                reason="Other two hinges are worn too; replace all three so the door hangs true (+$48 parts).",
            ),
            step(
                "approval_decide",
                by="approver",
                decision="APPROVED",
                notes="Approved per store manager; replace all three hinges.",
            ),
        )
        + route(TicketState.INVOICED, after=TicketState.IN_PROGRESS),
    ),
    Story(
        key="nakamura-back-lever",
        account="nakamura",
        site="nakamura.home",
        summary="Back door lever broken off",
        description="Back door lever snapped off in Emi's hand; door can only be opened from inside.",
        incident_type="HARDWARE_REPLACEMENT",
        priority="URGENT",
        ends_in=TicketState.CLOSED,
        tech="dana",
        day=-2,
        at="16:00",
        steps=route(TicketState.CLOSED),
    ),
    Story(
        key="hayes-mail-room-latch",
        account="goldengate",
        site="goldengate.hayes",
        summary="Mail room door won't latch",
        description="Mail room door bounces off the strike; packages at risk.",
        incident_type="DOOR_WONT_LATCH",
        priority="URGENT",
        ends_in=TicketState.CLOSED,
        tech="kim",
        day=-3,
        at="11:00",
        steps=route(TicketState.CLOSED),
    ),
    # --- cancelled ------------------------------------------------------------------------------
    Story(
        key="grand-garage-duplicate",
        account="bayview",
        site="bayview.grand",
        summary="Garage gate door not closing (duplicate report)",
        description="Second email about the same garage door from another resident.",
        incident_type="DOOR_WONT_LATCH",
        priority="ROUTINE",
        ends_in=TicketState.CANCELLED,
        steps=(
            step("create", by="agent"),
            step("cancel", reason="Duplicate of an open request for the same door.", cancellation_code="DUPLICATE"),
        ),
    ),
    Story(
        key="missionbay-warranty",
        account="goldengate",
        site="goldengate.missionbay",
        asset="goldengate.missionbay-lobby",
        summary="Lobby slider annual inspection",
        description="AAADM annual inspection of the lobby slider.",
        incident_type="AUTO_OPERATOR_FAULT",
        priority="ROUTINE",
        ends_in=TicketState.CANCELLED,
        tech="marcus",
        day=2,
        at="09:00",
        steps=route(TicketState.SCHEDULED)
        + (
            step(
                "cancel",
                reason="Building management: the door is under warranty, the manufacturer will inspect.",
                cancellation_code="CUSTOMER_CANCELLED",
            ),
        ),
    ),
)
