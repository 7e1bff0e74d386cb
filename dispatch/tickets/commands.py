"""What a business action on a ticket is allowed to do: who, from which states, to which state.

A service names its Command; the executor enforces it. The agent toolset's registry points at
the same Command objects, so the roles and states the API checks are the ones services check.
"""

from __future__ import annotations

from dataclasses import dataclass

from dispatch.common.roles import Role

from .states import TicketState


@dataclass(frozen=True)
class Command:
    tool: str
    roles: frozenset[Role]
    # None: the command does not depend on the ticket's state.
    from_states: frozenset[str] | None = None
    resulting_state: str | None = None
    label: str = ""

    def allows_role(self, role: Role | None) -> bool:
        # SYSTEM acts for the company itself (wake-ups, intake): it may take any command.
        return role is not None and (role in self.roles or role == Role.SYSTEM)

    def allows_state(self, state: str) -> bool:
        return self.from_states is None or state in self.from_states


# Every command made, by tool name: the tool names an audit event can carry (the audit list's
# filter offers these rather than reading DISTINCT tool_name over every event).
COMMANDS: dict[str, Command] = {}


def tool_names() -> list[str]:
    return sorted(COMMANDS)


def command(tool: str, roles, from_states=None, resulting_state=None, label: str = "") -> Command:
    made = Command(
        tool=tool,
        roles=frozenset(Role(r) for r in roles),
        from_states=None if from_states is None else frozenset(TicketState(s) for s in from_states),
        resulting_state=None if resulting_state is None else TicketState(resulting_state),
        label=label or tool,
    )
    COMMANDS.setdefault(tool, made)
    return made
