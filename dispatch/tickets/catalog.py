"""What one phase knows that another needs, handed over without the phases importing each other.

Layers run `common` <- `tickets` <- phases: intake, scheduling and closeout never import one
another. Where one needs a fact another keeps (scheduling needs an incident's typical duration
from closeout's templates and the customer's time preference from intake's extracted facts;
intake needs the templates' keywords), the keeping app registers a reader here when Django
starts (its AppConfig.ready) and the other asks through this module.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

_readers: dict[str, Callable[..., Any]] = {}


def reader_register(name: str, reader: Callable[..., Any]) -> None:
    """Called by the owning app's ready(): `name` is one of the readers below."""
    _readers[name] = reader


def _reader(name: str) -> Callable[..., Any]:
    try:
        return _readers[name]
    except KeyError:
        raise LookupError(f"No app has registered the {name!r} reader: is its app installed?") from None


def incident_duration_minutes(incident_type: str) -> int | None:
    """The incident template's typical job length in minutes, or None when there is no template."""
    return _reader("incident_duration_minutes")(incident_type)


def incident_crew(incident_type: str) -> tuple[int, int]:
    """(technicians needed at once, consecutive working days) for an incident type; (1, 1) when
    the template asks for neither or there is no template."""
    return _reader("incident_crew")(incident_type)


def incident_crew_types() -> set[str]:
    """The incident types whose jobs need a crew or several days."""
    return _reader("incident_crew_types")()


def technician_on_crew(ticket_id: Any, technician_id: Any) -> bool:
    """Whether the technician is booked on the ticket's crew or multi-day visit (scheduling keeps
    the visit): a crew member acts on the job as the assigned technician does."""
    return _reader("technician_on_crew")(ticket_id, technician_id)


def crew_ticket_ids(technician_id: Any) -> Any:
    """The ids of tickets whose visit books this technician on its crew, as a subquery."""
    return _reader("crew_ticket_ids")(technician_id)


def incident_keywords() -> dict[str, list[str]]:
    """Keywords per incident type, as the templates say now (an admin edit counts at once)."""
    return _reader("incident_keywords")()


def incident_intake_needs() -> dict[str, list[str]]:
    """What each incident type's template asks intake for beyond address and problem
    ({"AUTO_OPERATOR_FAULT": ["access"]}): "access" and/or "time_window"."""
    return _reader("incident_intake_needs")()


def ticket_open_question(ticket: Any) -> str:
    """The question intake would ask the ticket's customer now ("" when nothing is missing)."""
    return _reader("ticket_open_question")(ticket)


def ticket_time_preference(ticket_id: Any) -> tuple[Any, datetime | None] | None:
    """The customer's latest stated time preference for a ticket and when it was stated, or None."""
    return _reader("ticket_time_preference")(ticket_id)


def ticket_told_window(ticket_id: Any) -> tuple[datetime, datetime] | None:
    """The arrival window the customer was told for the ticket's booked visit (scheduling keeps
    it: the day plan may move the job inside it), or None when nothing is booked."""
    return _reader("ticket_told_window")(ticket_id)


def incident_type_names() -> dict[str, str]:
    """Each incident type that has a template, with the template's name (for pickers)."""
    return _reader("incident_type_names")()


def technicians_with_shifts(technician_ids: Iterable[Any]) -> set[Any]:
    """Which of these technicians have at least one weekly shift (scheduling keeps the shifts)."""
    return _reader("technicians_with_shifts")(technician_ids)


# --- flags: yes/no facts a phase keeps about tickets ---------------------------------------------
# Closeout's "missing evidence" is one: the ticket list shows it as a column and a filter, the
# dispatch board as a badge, both from the reader the keeping app registers here.


@dataclass(frozen=True)
class MarkAction:
    """A button a flag offers beside its mark on the board's side panel (the autopilot's "Apply"
    on a suggestion): `method` "post" sends a form to `url` and shows the answer in the panel,
    "get" loads `url` into the panel, "link" opens it as a page."""

    label: str
    url: str
    method: str = "post"
    tone: str = "plain"  # plain, primary or danger, as the back office's buttons
    title: str = ""


@dataclass(frozen=True)
class TicketMark:
    """What a flag says about one ticket: a few words for a cell or a badge, the whole for a tooltip,
    and what a dispatcher may do about it from the board (none for most flags)."""

    text: str
    detail: str = ""
    actions: tuple[MarkAction, ...] = ()
    # Since when it holds, where the flag knows (the board's "Needs attention" shows the age).
    since: datetime | None = None


@dataclass(frozen=True)
class TicketFlag:
    """A yes/no fact a phase keeps about tickets (closeout's missing evidence), shown as a column
    and a filter of the ticket list and as a mark on the board.

    `marks(tickets)` answers for the rows at hand ({ticket id: mark}, flagged tickets only);
    `flagged_ids(queryset)` for a whole queryset (the filter). Each costs a constant number of
    queries whatever the number of tickets."""

    key: str
    label: str
    # Where the flag means anything: elsewhere the column shows a dash and the filter finds nothing.
    states: frozenset[str]
    marks: Callable[[list[Any]], dict[Any, TicketMark]]
    flagged_ids: Callable[[Any], Iterable[Any]]
    # The character of the board's badge.
    icon: str = "!"
    # A column of its own in the ticket list; otherwise its mark is a chip under the ticket's state
    # (the filter is there either way).
    column: bool = True
    # The board also lists the flagged tickets under "Needs attention" (a suggestion waiting for a
    # dispatcher's click): flagged_ids over the tickets in `states`, then marks for those.
    attention: bool = False
    # A cheap, JSON-able value that changes whenever the flag's marks may have changed without the
    # ticket changing (a suggestion left beside it): the board's live refresh includes it.
    digest: Callable[[], Any] | None = None


_flags: dict[str, TicketFlag] = {}


def ticket_flags_register(*flags: TicketFlag) -> None:
    """Called by the keeping app's ready()."""
    for flag in flags:
        _flags[flag.key] = flag


def ticket_flags() -> tuple[TicketFlag, ...]:
    return tuple(_flags.values())


def ticket_marks(
    tickets: Iterable[Any], flags: Iterable[TicketFlag] | None = None
) -> dict[Any, list[tuple[TicketFlag, TicketMark]]]:
    """Every flag's marks (or only `flags`') for these tickets (which need id, state and
    incident_type loaded): {ticket id: [(flag, mark), ...]}, flagged tickets only. A flag is asked
    only about the tickets in its states, and not at all when there are none."""
    tickets = list(tickets)
    found: dict[Any, list[tuple[TicketFlag, TicketMark]]] = {}
    for flag in ticket_flags() if flags is None else flags:
        concerned = [ticket for ticket in tickets if ticket.state in flag.states]
        if not concerned:
            continue
        for ticket_id, mark in flag.marks(concerned).items():
            found.setdefault(ticket_id, []).append((flag, mark))
    return found
