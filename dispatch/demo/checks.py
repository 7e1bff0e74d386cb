"""A production deployment must not carry the demo's published logins.

The demo prints its usernames and passwords for anyone to read (README, `make run`), so a demo
user that still has its demo password is an open door. Registered as a deploy check that reads
the database: `manage.py check --deploy --database default` reports it, and the production web
server runs that check before it starts (config/gunicorn.conf.py) and refuses to serve.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import check_password
from django.core.checks import Error, Tags, register

from .company import LOGINS, TECHNICIAN_PASSWORD, TECHNICIANS

CHECK_ID = "dispatch.E001"


def demo_passwords() -> dict[str, str]:
    """username → the password the demo published for it."""
    return {
        **{login.username: login.password for login in LOGINS},
        **{spec.username: TECHNICIAN_PASSWORD for spec in TECHNICIANS},
    }


@register(Tags.security, deploy=True)
def demo_logins_check(app_configs=None, databases=None, **kwargs) -> list[Error]:
    if not databases:
        # Without --database, checks must not touch a database (Django's rule for checks).
        return []
    published = demo_passwords()
    users = get_user_model().objects.filter(username__in=published, is_active=True).only("username", "password")
    # hashers.check_password, not user.check_password: a check must not re-hash and save anything.
    still_open = sorted(user.username for user in users if check_password(published[user.username], user.password))
    if not still_open:
        return []
    return [
        Error(
            f"Demo logins with their published passwords exist: {', '.join(still_open)}.",
            hint="Change their passwords or deactivate them (manage.py changepassword <username>) before serving.",
            id=CHECK_ID,
        )
    ]
