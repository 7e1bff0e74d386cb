"""The closeout and approval Commands carry the contract's exact tool names, roles and states."""

from __future__ import annotations

import pytest

from dispatch.api.registry import contract_tools
from dispatch.closeout import services
from dispatch.tickets import approvals

CONTRACT = contract_tools()

COMMANDS = [
    services.EVIDENCE_ADD,
    services.TECH_COMPLETE,
    services.CLOSEOUT_CANDIDATE,
    services.QA_VERIFY,
    services.BILLING_GENERATE_INVOICE,
    services.TICKET_CLOSE,
    services.TICKET_FORCE_CLOSE,
    services.EVIDENCE_EXCEPTION,
    services.DISPATCH_MANUAL_BYPASS,
    services.AUTONOMY_PAUSE,
    services.AUTONOMY_ROLLBACK,
    approvals.TECH_REQUEST_CHANGE,
    approvals.APPROVAL_DECIDE,
]


@pytest.mark.parametrize("cmd", COMMANDS, ids=lambda c: c.tool)
def test_command_equals_the_contract(cmd):
    tool = CONTRACT[cmd.tool]
    assert sorted(r.value for r in cmd.roles) == sorted(tool["allowed_roles"])
    expected_states = None if tool["allowed_from_states"] is None else set(tool["allowed_from_states"])
    assert (None if cmd.from_states is None else {s.value for s in cmd.from_states}) == expected_states
    assert (cmd.resulting_state.value if cmd.resulting_state else None) == tool["resulting_state"]
