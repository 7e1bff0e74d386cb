"""ASGI entry point: Django for every URL, and the toolset's MCP endpoint at /mcp.

`make run` serves this with uvicorn (scripts/run_dev.sh). In production gunicorn serves
config/wsgi.py, which has everything but /mcp; the proxy sends /mcp to uvicorn serving this
module (any number of processes: the MCP endpoint is stateless). See README.md, "URLs".
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.development")
django_application = get_asgi_application()

from django.conf import settings  # noqa: E402 - after Django is set up
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

from dispatch.api.mcp.server import asgi_application  # noqa: E402

if settings.DEBUG:
    # What runserver does in development: serve /static/ from the apps' and project's static dirs.
    django_application = ASGIStaticFilesHandler(django_application)
application = asgi_application(django_application)
