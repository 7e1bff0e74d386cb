"""Gunicorn for production: `gunicorn -c config/gunicorn.conf.py`.

Serves the WSGI app under config.settings.production unless DJANGO_SETTINGS_MODULE says
otherwise. Static files are not served here: run `manage.py collectstatic` and let the
reverse proxy serve STATIC_ROOT at /static/.
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")

wsgi_app = "config.wsgi:application"
bind = f"{os.environ.get('BIND_ADDRESS', '0.0.0.0')}:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "3"))
threads = int(os.environ.get("GUNICORN_THREADS", "2"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 30
# Only the proxy in front may say a request came over HTTPS (SECURE_PROXY_SSL_HEADER trusts it).
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# The access log is written in the request path (a formatted line per request, about 5% of the
# server's CPU under load); the reverse proxy in front logs the same requests. Set
# GUNICORN_ACCESS_LOG=- (stdout) or a file path to have gunicorn write one as well.
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None
errorlog = "-"
# gunicorn's control socket (for `gunicornc`) lives at one path per user by default, so a second
# server on the same machine would take over the first one's. Off unless a path is given.
control_socket = os.environ.get("GUNICORN_CONTROL_SOCKET", "")
control_socket_disable = not control_socket


def on_starting(server):
    """Before serving: the deploy checks that read the database (the demo's published logins
    among them). An error stops the server here rather than open the doors. The check runs in a
    process of its own, so that no database connection (or psycopg pool) is opened in gunicorn's
    master and inherited by every worker it forks."""
    import subprocess
    import sys
    from pathlib import Path

    finished = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--database", "default", "--fail-level", "ERROR"],
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
    )
    if finished.returncode != 0:
        raise SystemExit(f"Refusing to serve: the deploy checks failed.\n{finished.stdout}{finished.stderr}")
