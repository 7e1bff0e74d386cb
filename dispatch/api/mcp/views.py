"""What /mcp answers when a request reaches Django itself (a WSGI server such as gunicorn)."""

from __future__ import annotations

from django.views.decorators.csrf import csrf_exempt

from dispatch.common.errors import DispatchError

from ..errors import envelope_response


@csrf_exempt  # an MCP client authenticates by header, never by cookie
def mcp_not_served_here(request):
    """The MCP endpoint is the ASGI application's (config/asgi.py): say so in the API's envelope."""
    error = DispatchError(
        "NOT_FOUND",
        "The MCP endpoint is served by the ASGI application (config.asgi:application); this server runs WSGI.",
        status=404,
        dimension="request",
        details={"path": request.path},
    )
    return envelope_response(error, request)
