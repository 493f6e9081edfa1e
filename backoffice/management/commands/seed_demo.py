"""Demo data for `make run`: a merchant with a test API key, an admin with an authenticator
(its TOTP secret and otpauth:// URI are printed with the password, so any authenticator app,
or the README's one-liner, gives the code the sign-in asks for), staff tokens for an operator
and a support user, two customers and a handful of payments in every state.

Idempotent. Secrets exist in clear only when they are created (the database keeps their
digests), so the first run writes them to <RUN_DIR>/demo-credentials.json (mode 600) and
later runs read that file back, check every secret against the database, and print it
again. Whatever no longer checks out (file deleted, key revoked, database reset) is issued
anew, the demo credentials it replaces are revoked, and the file is rewritten.
"""

import json as jsonlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import ApiKey, Merchant, StaffToken
from accounts.services import (
    api_key_create,
    api_key_revoke,
    credential_digest,
    merchant_create,
    staff_token_create,
    staff_token_revoke,
)
from accounts.services.mfa import TOTP_DEVICE_NAME, totp_secret
from audit.actions import AuditAction
from audit.services import audit_record
from backoffice.dashboard.demo import dashboard_demo_seed
from core import permissions as roles
from core.actors import Actor
from gateways.registry import enabled_gateway_names
from gateways.router import primary_gateway_name
from payments.models import Customer, PaymentMethod, Transaction, TransactionStatus
from payments.services.customers import customer_create, payment_method_attach
from payments.services.transactions import (
    PaymentInput,
    transaction_cancel,
    transaction_create,
)

CREDENTIALS_FILE = "demo-credentials.json"
SEED_LABEL = "seed_demo"
DEMO_MERCHANT = "FlowMart Demo"
ADMIN_USERNAME = "admin"
ADMIN_EMAIL = "admin@flowmart.example"
STAFF_USERS = ((roles.OPERATOR, "demo-operator"), (roles.SUPPORT, "demo-support"))
CUSTOMERS = (("ada@flowmart.example", "Ada Lovelace"), ("grace@flowmart.example", "Grace Hopper"))
SAVED_CARD = {"token": "pm_card_visa", "brand": "visa", "last4": "4242"}  # saved for the first customer


@dataclass(frozen=True)
class DemoPayment:
    ref: str  # stored in the payment's metadata as seed_demo=<ref>: a payment is seeded once
    amount: int
    currency: str
    payment_method: str
    capture_method: str = "automatic"
    customer: int | None = None  # index into CUSTOMERS
    description: str = ""
    cancel: bool = False  # cancel (void) it once authorized
    # Pay through a method saved at this gateway: the simulator's test ids that localstripe
    # (the demo's Stripe) does not know still show every state, at the gateway that knows them.
    pin_gateway: str | None = None


# payment_method "saved" means the first customer's saved card (a pm_… id of ours).
PAYMENTS = (
    DemoPayment("demo-1001", 1999, "USD", "saved", customer=0, description="Order #1001"),
    DemoPayment("demo-1002", 4500, "USD", "pm_card_visa", customer=1, description="Order #1002"),
    DemoPayment("demo-1003", 12000, "EUR", "pm_card_amex", customer=1, description="Order #1003", pin_gateway="simulator"),
    DemoPayment("demo-1004", 2599, "USD", "pm_card_visa", "manual", customer=0, description="Order #1004, to capture"),
    DemoPayment("demo-1005", 7800, "USD", "pm_card_visa", "manual", customer=1, description="Order #1005, canceled",
                cancel=True),
    DemoPayment("demo-1006", 3200, "USD", "pm_card_chargeDeclinedInsufficientFunds", customer=1,
                description="Order #1006", pin_gateway="simulator"),
    DemoPayment("demo-1007", 999, "USD", "pm_card_chargeCustomerFail", description="Order #1007"),
    DemoPayment("demo-1008", 15000, "USD", "pm_card_threeDSecure2Required", customer=0,
                description="Order #1008, waiting for 3-D Secure", pin_gateway="simulator"),
)


class Command(BaseCommand):
    help = (
        "Seed idempotent demo data (merchant 'FlowMart Demo', admin, operator and support tokens, customers, "
        "payments) and print the demo credentials, kept in <FLOWPAY_RUN_DIR>/demo-credentials.json."
    )

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="print only the credentials, as JSON")

    def handle(self, *args, json: bool, **options):
        if settings.FLOWPAY_API_KEY_ENVIRONMENT == "live":
            raise CommandError("seed_demo creates a superuser with a known password: it refuses to run with live keys.")
        actor = Actor.system("seed_demo")
        # Read at call time (not import time) so that tests can point RUN_DIR elsewhere.
        path = Path(settings.RUN_DIR) / CREDENTIALS_FILE
        saved = _read_credentials(path)

        merchant = Merchant.objects.filter(name=DEMO_MERCHANT).order_by("id").first()
        if merchant is None:
            merchant = merchant_create(name=DEMO_MERCHANT, actor=actor)

        credentials = {
            "merchant": {"id": merchant.public_id, "name": merchant.name},
            "apiKey": _ensure_api_key(merchant, saved.get("apiKey"), actor),
            "admin": {"username": ADMIN_USERNAME, "password": _ensure_admin(_nested(saved, "admin", "password"), actor),
                      **_ensure_admin_totp(_nested(saved, "admin", "totpSecret"))},
            "staffTokens": {
                role: {"username": username, "token": _ensure_staff_token(username, role, _nested(saved, "staffTokens", role, "token"), actor)}
                for role, username in STAFF_USERS
            },
        }
        reused = credentials == saved
        if not reused:
            _write_credentials(path, credentials)

        customers = _ensure_customers(merchant, actor)
        created_payments = _ensure_payments(merchant, customers, actor)
        created_payments += dashboard_demo_seed(merchant=merchant, customers=customers, actor=actor)

        if json:
            self.stdout.write(jsonlib.dumps(credentials, indent=2))
            return
        self._print_summary(credentials, path, reused=reused, created_payments=created_payments, merchant=merchant)

    def _print_summary(self, credentials: dict, path: Path, *, reused: bool, created_payments: int, merchant: Merchant):
        admin, staff = credentials["admin"], credentials["staffTokens"]
        payments = Transaction.objects.filter(merchant=merchant).count()
        customers = Customer.objects.filter(merchant=merchant).count()
        lines = [
            f"Demo merchant    {credentials['merchant']['name']} ({credentials['merchant']['id']})",
            f"Merchant API key {credentials['apiKey']}",
            f"Admin login      {admin['username']} / {admin['password']}",
            f"Admin TOTP       {admin['totpSecret']}  (add it to an authenticator app, or see README for a one-line code)",
            f"Admin TOTP URI   {admin['otpauthUri']}",
        ]
        lines += [f"{(role.capitalize() + ' token'):<16} {staff[role]['token']}  (user {staff[role]['username']})" for role in staff]
        lines += [
            f"Data             {customers} customers, {payments} payments ({created_payments} created now)",
            f"Credentials file {path} ({'unchanged' if reused else 'written'}, mode 600)",
            "Dashboard        /admin/ (the overview: ?period=30d&mode=test), /admin/dashboard/gateways/ (operators)",
        ]
        self.stdout.write("\n".join(lines))


# --- credentials -------------------------------------------------------------------
def _nested(data: dict, *keys: str):
    for key in keys:
        data = data.get(key) if isinstance(data, dict) else None
    return data if isinstance(data, str) else None


def _read_credentials(path: Path) -> dict:
    try:
        data = jsonlib.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_credentials(path: Path, credentials: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(jsonlib.dumps(credentials, indent=2) + "\n")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def _ensure_api_key(merchant: Merchant, secret: str | None, actor: Actor) -> str:
    if secret and ApiKey.objects.filter(merchant=merchant, key_hash=credential_digest(secret), revoked_at__isnull=True).exists():
        return secret
    # Nobody can know the secret of an earlier demo key any more: revoke it.
    for key_id in ApiKey.objects.filter(merchant=merchant, label=SEED_LABEL, revoked_at__isnull=True).values_list("id", flat=True):
        api_key_revoke(api_key_id=key_id, actor=actor)
    return api_key_create(merchant=merchant, environment="test", label=SEED_LABEL, actor=actor).secret


@transaction.atomic
def _ensure_admin(password: str | None, actor: Actor) -> str:
    User = get_user_model()
    user = User.objects.filter(username=ADMIN_USERNAME).first()
    if user is not None and password and user.is_superuser and user.is_active and user.check_password(password):
        result = password
    else:
        result = _demo_password()
        if user is None:
            user = User.objects.create_superuser(username=ADMIN_USERNAME, email=ADMIN_EMAIL, password=result)
            action = AuditAction.STAFF_USER_CREATE
        else:
            user.set_password(result)
            user.is_staff = user.is_superuser = user.is_active = True
            user.save()
            action = AuditAction.STAFF_USER_PASSWORD_RESET
        audit_record(actor=actor, action=action, target=user, details={"username": ADMIN_USERNAME, "superuser": True})
    group, _ = Group.objects.get_or_create(name=roles.ADMIN)
    user.groups.add(group)
    return result


def _demo_password() -> str:
    """Random, and within the staff password rules (12+ characters, letters and digits)."""
    while True:
        candidate = secrets.token_urlsafe(18)
        if any(ch.isalpha() for ch in candidate) and any(ch.isdigit() for ch in candidate):
            return candidate


@transaction.atomic
def _ensure_admin_totp(secret: str | None) -> dict:
    """The demo admin's authenticator: the saved one while its secret still checks out, else a
    new confirmed TOTP device (enrolment done for the demo, its secret printed instead)."""
    user = get_user_model().objects.get(username=ADMIN_USERNAME)
    device = next((d for d in TOTPDevice.objects.filter(user=user, confirmed=True) if secret and totp_secret(d) == secret), None)
    if device is None:
        TOTPDevice.objects.filter(user=user).delete()
        device = TOTPDevice.objects.create(user=user, name=TOTP_DEVICE_NAME, confirmed=True)
        audit_record(actor=Actor.system("seed_demo"), action=AuditAction.STAFF_USER_MFA_ENROL, target=user,
                     details={"username": ADMIN_USERNAME, "device": "totp", "enrolled_by": "seed_demo"})
    return {"totpSecret": totp_secret(device), "otpauthUri": device.config_url}


def _ensure_staff_token(username: str, role: str, secret: str | None, actor: Actor) -> str:
    if secret and StaffToken.objects.filter(
        user__username=username, user__is_active=True, user__groups__name=role,
        key_hash=credential_digest(secret), revoked_at__isnull=True, expires_at__gt=timezone.now(),
    ).exists():
        return secret
    for token_id in StaffToken.objects.filter(
        user__username=username, label=SEED_LABEL, revoked_at__isnull=True
    ).values_list("id", flat=True):
        staff_token_revoke(staff_token_id=token_id, actor=actor)
    return staff_token_create(username=username, role=role, label=SEED_LABEL, actor=actor).secret


# --- customers and payments --------------------------------------------------------
def _ensure_customers(merchant: Merchant, actor: Actor) -> list[Customer]:
    customers = []
    for email, name in CUSTOMERS:
        customer = Customer.objects.filter(merchant=merchant, email=email).order_by("id").first()
        if customer is None:
            customer = customer_create(merchant=merchant, email=email, name=name, metadata={"seed": SEED_LABEL}, actor=actor)
        customers.append(customer)
    payment_method_attach(customer=customers[0], gateway=primary_gateway_name(), gateway_token=SAVED_CARD["token"],
                          brand=SAVED_CARD["brand"], last4=SAVED_CARD["last4"], actor=actor)  # same token twice: same method
    return customers


def _ensure_payments(merchant: Merchant, customers: list[Customer], actor: Actor) -> int:
    created = 0
    for demo in PAYMENTS:
        if Transaction.objects.filter(merchant=merchant, metadata__seed_demo=demo.ref).exists():
            continue
        customer = customers[demo.customer] if demo.customer is not None else None
        payment_method = demo.payment_method
        if payment_method == "saved":
            payment_method = PaymentMethod.objects.filter(
                customer=customers[0], gateway_token=SAVED_CARD["token"]
            ).values_list("public_id", flat=True).first()
        elif demo.pin_gateway:
            if demo.pin_gateway not in enabled_gateway_names():
                continue
            payment_method = payment_method_attach(
                customer=customer, gateway=demo.pin_gateway, gateway_token=payment_method, actor=actor
            ).public_id
        # A declined card returns a failed transaction (the API turns it into a 402).
        txn = transaction_create(
            merchant=merchant,
            payment=PaymentInput(
                amount=demo.amount, currency=demo.currency, payment_method=payment_method,
                capture_method=demo.capture_method, customer=customer.public_id if customer else None,
                description=demo.description, metadata={"seed_demo": demo.ref},
            ),
            actor=actor,
        )
        if demo.cancel and txn.status == TransactionStatus.AUTHORIZED:
            transaction_cancel(transaction_id=txn.pk, actor=actor)
        created += 1
    return created
