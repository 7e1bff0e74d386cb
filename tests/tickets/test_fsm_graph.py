"""The transition graph declared on Ticket is the design's table, and agrees with the contract."""

from __future__ import annotations

import ast
import json
import re
from collections import deque
from pathlib import Path

from django.conf import settings

from dispatch.tickets.states import CREATION_STATES, TicketState
from dispatch.tickets.transitions import allowed_next_states, declared_edges

CONTRACT_FILE = Path(settings.BASE_DIR) / "dispatch" / "api" / "contract" / "dispatch-contract.v1.json"

# The design's "Legal transitions" table (DESIGN.md, "Ticket lifecycle"), copied verbatim: the
# graph declared on Ticket must be exactly this, whatever the code says about itself.
DESIGN_TABLE = """
| from | to |
|---|---|
| (created) | NEW, TRIAGED, READY_TO_SCHEDULE |
| NEW | NEEDS_INFO, TRIAGED, CANCELLED |
| NEEDS_INFO | TRIAGED, CANCELLED |
| TRIAGED | APPROVAL_REQUIRED, READY_TO_SCHEDULE, DISPATCHED (emergency bypass), CANCELLED |
| APPROVAL_REQUIRED | READY_TO_SCHEDULE, TRIAGED, IN_PROGRESS, CANCELLED |
| READY_TO_SCHEDULE | SCHEDULE_PROPOSED, PENDING_CUSTOMER_CONFIRMATION, CANCELLED |
| SCHEDULE_PROPOSED | SCHEDULED, PENDING_CUSTOMER_CONFIRMATION, CANCELLED |
| SCHEDULED | DISPATCHED, PENDING_CUSTOMER_CONFIRMATION, CANCELLED |
| PENDING_CUSTOMER_CONFIRMATION | READY_TO_SCHEDULE, SCHEDULE_PROPOSED, SCHEDULED, CANCELLED |
| DISPATCHED | ON_SITE, ON_HOLD, SCHEDULED, CANCELLED |
| ON_SITE | IN_PROGRESS, ON_HOLD, SCHEDULED, CANCELLED |
| IN_PROGRESS | ON_HOLD, COMPLETED_PENDING_VERIFICATION, APPROVAL_REQUIRED, SCHEDULED, CANCELLED |
| ON_HOLD | READY_TO_SCHEDULE, IN_PROGRESS, SCHEDULED, CANCELLED |
| COMPLETED_PENDING_VERIFICATION | VERIFIED, CLOSED (force close), CANCELLED |
| VERIFIED | INVOICED, IN_PROGRESS (reopen), CLOSED, CANCELLED |
| INVOICED | CLOSED, IN_PROGRESS (reopen), CANCELLED |
"""

# Pairs the contract lists as from-states of dispatch.force_unassign (resulting SCHEDULED) that
# the design's graph has no edge for. The executor refuses them with INVALID_STATE_TRANSITION;
# the graph, not the contract's looser list, is the rule.
CONTRACT_PAIRS_THE_GRAPH_REFUSES = {
    ("dispatch.force_unassign", "READY_TO_SCHEDULE", "SCHEDULED"),
    ("dispatch.force_unassign", "COMPLETED_PENDING_VERIFICATION", "SCHEDULED"),
    ("dispatch.force_unassign", "VERIFIED", "SCHEDULED"),
    ("dispatch.force_unassign", "INVOICED", "SCHEDULED"),
}


# Tools whose one call takes two transitions (check-in: DISPATCHED -> ON_SITE -> IN_PROGRESS).
TOOLS_TAKING_TWO_STEPS = {"tech.check_in"}


def design_table() -> tuple[set[str], set[tuple[str, str]]]:
    """Parse the design's 'Legal transitions' table into creation states and edges."""
    created: set[str] = set()
    edges: set[tuple[str, str]] = set()
    for line in DESIGN_TABLE.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 2 or cells[0] in ("from", "") or set(cells[0]) <= {"-"}:
            continue
        targets = {re.sub(r"\s*\(.*?\)", "", t).strip() for t in cells[1].split(",")}
        if cells[0] == "(created)":
            created |= targets
        else:
            edges |= {(cells[0], t) for t in targets}
    return created, edges


def contract_tools() -> list[dict]:
    return json.loads(CONTRACT_FILE.read_text())["tools"]


def test_declared_graph_is_exactly_the_design_table():
    created, edges = design_table()
    assert len(edges) == 53  # guards the parser itself against a silently empty table
    assert declared_edges() == edges
    assert set(CREATION_STATES) == created


def test_every_state_in_the_design_exists_and_only_closed_and_cancelled_are_terminal():
    created, edges = design_table()
    named = created | {s for edge in edges for s in edge}
    assert named == {s.value for s in TicketState}
    dead_ends = {s.value for s in TicketState if not allowed_next_states(s)}
    assert dead_ends == {"CLOSED", "CANCELLED"}


def _reachable_within(source: str, target: str, steps: int) -> bool:
    frontier = deque([(source, 0)])
    while frontier:
        state, depth = frontier.popleft()
        if state == target and depth:
            return True
        if depth < steps:
            frontier.extend((nxt, depth + 1) for nxt in allowed_next_states(state))
    return False


def test_contract_from_states_and_results_agree_with_the_graph():
    """Each (from-state, resulting state) of a contract tool is an edge, a stay, or the two-step
    path check-in takes in one call; the only exceptions are the documented refusals."""
    disagreements = set()
    for tool in contract_tools():
        result = tool["resulting_state"]
        for source in tool["allowed_from_states"] or []:
            assert source in TicketState.values, (tool["tool_name"], source)
            if result is None:
                # The service picks the target (hold, release, approval): some move must exist.
                assert allowed_next_states(source), (tool["tool_name"], source)
                continue
            if source == result or (source, result) in declared_edges():
                continue
            if tool["tool_name"] in TOOLS_TAKING_TWO_STEPS and _reachable_within(source, result, 2):
                continue
            disagreements.add((tool["tool_name"], source, result))
        if tool["allowed_from_states"] is None and result is not None:
            assert result in CREATION_STATES, tool["tool_name"]
    assert disagreements == CONTRACT_PAIRS_THE_GRAPH_REFUSES


def test_only_the_executor_calls_transition_methods():
    """Transition methods are called in dispatch/tickets/services.py and nowhere else."""
    methods = {name for (_s, _t) in declared_edges() for name in [f"to_{_t.lower()}"]}
    root = Path(settings.BASE_DIR)
    offenders = []
    for path in list((root / "dispatch").rglob("*.py")) + list((root / "config").rglob("*.py")):
        if path.relative_to(root).as_posix() in {"dispatch/tickets/services.py", "dispatch/tickets/models.py"}:
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in methods:
                offenders.append(f"{path.relative_to(root)}:{node.lineno} {node.func.attr}()")
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "update":
                for kw in node.keywords:
                    if kw.arg == "state":
                        offenders.append(f"{path.relative_to(root)}:{node.lineno} update(state=...)")
    assert offenders == []
