import json as jsonlib

from django.core.management.base import BaseCommand, CommandError

from accounts.services import staff_token_create
from core.actors import Actor
from core.cli import DurationError, parse_duration
from core.errors import FlowPayError
from core.permissions import STAFF_ROLES


class Command(BaseCommand):
    help = (
        "Create the staff user if needed, give them a role, and print a personal token (shown once) that expires "
        "after --expires-in (default FLOWPAY_STAFF_TOKEN_DEFAULT_HOURS, at most 30 days). For bootstrap and "
        "automation; people issue their own tokens from the back office's Staff tokens page. Audited."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=STAFF_ROLES)
        parser.add_argument("--label", default="")
        parser.add_argument("--expires-in", default=None, help="lifetime, e.g. 12h, 7d (default: FLOWPAY_STAFF_TOKEN_DEFAULT_HOURS)")
        parser.add_argument("--json", action="store_true", help='print {"username": ..., "role": ..., "token": ...}')

    def handle(self, *args, username: str, role: str, label: str, json: bool, expires_in: str | None, **options):
        try:
            lifetime = parse_duration(expires_in) if expires_in else None
        except DurationError as exc:
            raise CommandError(str(exc)) from None
        try:
            issued = staff_token_create(username=username, role=role, label=label, expires_in=lifetime,
                                        actor=Actor.system("manage.py create_staff_token"))
        except FlowPayError as exc:
            raise CommandError(exc.message) from None
        expires_at = issued.record.expires_at.isoformat()
        if json:
            self.stdout.write(jsonlib.dumps({"username": username, "role": role, "token": issued.secret, "expiresAt": expires_at}))
        else:
            self.stdout.write(f"Staff user: {username} (role: {role})")
            self.stdout.write(f"Token:      {issued.secret}")
            self.stdout.write(f"Expires:    {expires_at}")
            self.stdout.write("Store the token now: it is not shown again.")
