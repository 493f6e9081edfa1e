import json as jsonlib

from django.core.management.base import BaseCommand, CommandError

from accounts.services import staff_token_create
from core.actors import Actor
from core.errors import FlowPayError
from core.permissions import STAFF_ROLES


class Command(BaseCommand):
    help = "Create the staff user if needed, give them a role, and print a personal token (shown once)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=STAFF_ROLES)
        parser.add_argument("--label", default="")
        parser.add_argument("--json", action="store_true", help='print {"username": ..., "role": ..., "token": ...}')

    def handle(self, *args, username: str, role: str, label: str, json: bool, **options):
        try:
            issued = staff_token_create(username=username, role=role, label=label, actor=Actor.system("manage.py create_staff_token"))
        except FlowPayError as exc:
            raise CommandError(exc.message) from None
        if json:
            self.stdout.write(jsonlib.dumps({"username": username, "role": role, "token": issued.secret}))
        else:
            self.stdout.write(f"Staff user: {username} (role: {role})")
            self.stdout.write(f"Token:      {issued.secret}")
            self.stdout.write("Store the token now: it is not shown again.")
