"""The toolset over the Model Context Protocol: the same closed list of tools as /api/v1, for MCP clients.

`calls` turns one MCP request into the registry's own path (dispatch/api/views.tool_run), with no
async code and no SDK types; `server` wires it to the official `mcp` SDK: Streamable HTTP at
`/mcp` (config/asgi.py) and stdio (`manage.py mcp_server`).
"""
