"""Issue an API token from the command line; the plaintext is printed once and never stored."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from dispatch.common.errors import DispatchError
from dispatch.common.roles import Role

from ...services import api_token_create


class Command(BaseCommand):
    help = "Create a bearer token for the agent API, bound to a role and optionally to accounts, sites and a user."

    def add_arguments(self, parser):
        parser.add_argument("--role", required=True, help=f"One of: {', '.join(r.value for r in Role)} (or an alias).")
        parser.add_argument(
            "--account", action="append", default=[], metavar="UUID", help="Limit to this account (repeatable)."
        )
        parser.add_argument(
            "--site", action="append", default=[], metavar="UUID", help="Limit to this site (repeatable)."
        )
        parser.add_argument("--name", help="A unique name for the token (default: '<role>-<n>').")
        parser.add_argument("--user", metavar="USERNAME", help="The user the token acts as (required for technicians).")

    def handle(self, *args, role, account, site, name, user, **options):
        owner = None
        if user:
            owner = get_user_model().objects.filter(username=user).first()
            if owner is None:
                raise CommandError(f"No user named {user!r}.")
        try:
            token, plaintext = api_token_create(
                name=name or _default_name(role), role=role, account_ids=account, site_ids=site, user=owner
            )
        except DispatchError as error:
            raise CommandError(error.message) from None
        self.stderr.write(f"Created token {token.name!r} (role {token.role}). It is shown once; store it now:")
        self.stdout.write(plaintext)


def _default_name(role: str) -> str:
    from ...models import ApiToken

    base = f"{role}-token"
    taken = set(ApiToken.objects.filter(name__startswith=base).values_list("name", flat=True))
    number = 1
    while f"{base}-{number}" in taken:
        number += 1
    return f"{base}-{number}"
