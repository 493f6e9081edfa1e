import json as jsonlib

from django.core.management.base import BaseCommand, CommandError

from accounts.services import api_key_create, merchant_create
from core.actors import Actor
from core.errors import FlowPayError


class Command(BaseCommand):
    help = "Create a merchant and print its id and a new API key (shown once)."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--environment", choices=["test", "live"], default="test", help="key kind: fp_test_… or fp_live_…")
        parser.add_argument("--json", action="store_true", help='print {"merchantId": ..., "apiKey": ...}')

    def handle(self, *args, name: str, environment: str, json: bool, **options):
        actor = Actor.system("manage.py create_merchant")
        try:
            merchant = merchant_create(name=name, actor=actor)
            issued = api_key_create(merchant=merchant, environment=environment, label="created by create_merchant", actor=actor)
        except FlowPayError as exc:
            raise CommandError(exc.message) from None
        if json:
            self.stdout.write(jsonlib.dumps({"merchantId": merchant.public_id, "apiKey": issued.secret}))
        else:
            self.stdout.write(f"Merchant: {merchant.name} ({merchant.public_id})")
            self.stdout.write(f"API key:  {issued.secret}")
            self.stdout.write("Store the key now: it is not shown again (only its prefix is kept).")

