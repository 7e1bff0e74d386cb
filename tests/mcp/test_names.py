"""MCP tool names (what LLM clients accept, one per registry tool, and back) and where /mcp is served."""

from __future__ import annotations

from dispatch.api.mcp.calls import TOOL_NAME, TOOLS_BY_MCP_NAME
from dispatch.api.registry import TOOLS, TOOLS_BY_NAME


def test_every_tool_has_an_mcp_name_clients_accept_that_names_it_alone():
    assert len(TOOLS_BY_MCP_NAME) == len(TOOLS)
    for mcp_name, tool in TOOLS_BY_MCP_NAME.items():
        assert TOOL_NAME.match(mcp_name), mcp_name
        assert TOOLS_BY_NAME[tool.name] is tool
    assert TOOLS_BY_MCP_NAME["ticket_create"].name == "ticket.create"
    assert TOOLS_BY_MCP_NAME["ops_autonomy_state"].name == "ops.autonomy.state"


def test_mcp_under_a_wsgi_server_says_where_it_is_served(client):
    response = client.post("/mcp", data={}, content_type="application/json")
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "NOT_FOUND" and "config.asgi" in error["message"]
