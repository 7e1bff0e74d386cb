"""Reads of the transition graph declared on Ticket: the FSM declaration is the only copy."""

from __future__ import annotations

from functools import lru_cache

from .models import Ticket
from .states import TicketState


@lru_cache(maxsize=1)
def _edges() -> dict[tuple[str, str], str]:
    field = Ticket._meta.get_field("state")
    edges: dict[tuple[str, str], str] = {}
    for tr in field.get_all_transitions(Ticket):
        edges[(str(tr.source), str(tr.target))] = tr.name
    return edges


def declared_edges() -> set[tuple[str, str]]:
    """Every (from, to) pair the model declares."""
    return set(_edges())


def transition_method(source: str, target: str) -> str | None:
    """The Ticket method that moves `source` to `target`, or None when the graph has no such edge."""
    return _edges().get((str(source), str(target)))


def allowed_next_states(state: str) -> list[str]:
    """States reachable in one step from `state`, in the order of the state list."""
    targets = {target for (source, target) in _edges() if source == str(state)}
    return [s.value for s in TicketState if s.value in targets]
