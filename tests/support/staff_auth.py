"""Signing staff in as a person does: the sign-in page with a password and the current code
of their authenticator, so every admin test goes through the second factor.

A pytest plugin (tests/conftest.py loads it):

- `staff_sign_in(client, user, password=...)`: gives `user` a confirmed authenticator if they
  have none, signs `client` in through /admin/login/ and returns the device.
- `mfa_admin_client`: pytest-django's `admin_user` (password "password"), signed in with MFA:
  the client to use wherever a test would have used `mfa_admin_client`.

Helpers, imported by name: `totp_code(device)` (the code an authenticator shows now, or the
next one when the current one was used), `enrol_device(user)`.
"""

import time

import pytest
from django.test import Client
from django_otp.oath import hotp
from django_otp.plugins.otp_totp.models import TOTPDevice

SIGN_IN_URL = "/admin/login/"
STAFF_PASSWORD = "correct horse battery staple"  # tests.support.refunds' staff_user


def enrol_device(user) -> TOTPDevice:
    """The user's confirmed authenticator (made, as enrolment would, when missing)."""
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    return device or TOTPDevice.objects.create(user=user, name="authenticator", confirmed=True)


def totp_code(device: TOTPDevice, *, step_offset: int = 0, now: float | None = None) -> str:
    """The code of the device's current time step (plus `step_offset`), or of the first step
    after the last one it accepted when that one was used already (within its tolerance, one
    step ahead, as a phone whose clock runs a little fast)."""
    device.refresh_from_db()
    current = int(((now if now is not None else time.time()) - device.t0) // device.step) + device.drift + step_offset
    step = max(current, device.last_t + 1)
    if step > current + device.tolerance:
        raise AssertionError("this device's next code is not valid yet: move the clock forward (time_machine) first")
    return str(hotp(device.bin_key, step, digits=device.digits)).zfill(device.digits)


def sign_in(client: Client, user, *, password: str, device: TOTPDevice | None = None, code: str | None = None):
    device = device or enrol_device(user)
    response = client.post(SIGN_IN_URL, {"username": user.get_username(), "password": password,
                                         "otp_token": code or totp_code(device)})
    assert response.status_code == 302, f"sign-in of {user.get_username()} refused: {response.status_code}"
    return response


@pytest.fixture
def staff_sign_in(db):
    def do(client: Client, user, *, password: str = STAFF_PASSWORD) -> TOTPDevice:
        device = enrol_device(user)
        sign_in(client, user, password=password, device=device)
        return device

    return do


@pytest.fixture
def mfa_admin_client(db, admin_user, staff_sign_in) -> Client:
    client = Client()
    staff_sign_in(client, admin_user, password="password")
    return client
