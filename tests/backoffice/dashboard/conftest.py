"""Fixtures of the dashboard's tests: staff users of each role signed in through the real
sign-in form (password and TOTP code), and a few payments with refunds and disputes."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client

from core.permissions import STAFF_ROLES
from tests.support.staff_auth import STAFF_PASSWORD


@pytest.fixture
def role_user(db):
    def make(role: str, username: str | None = None):
        user, _ = get_user_model().objects.get_or_create(username=username or f"{role}-dash", defaults={"is_staff": True})
        user.set_password(STAFF_PASSWORD)
        user.save()
        user.groups.add(Group.objects.get_or_create(name=role)[0])
        return user

    return make


@pytest.fixture
def role_client(role_user, staff_sign_in):
    """A Client signed in (second factor included) as a user of `role`."""

    def make(role: str, username: str | None = None) -> Client:
        client = Client()
        staff_sign_in(client, role_user(role, username))
        return client

    return make


@pytest.fixture(params=STAFF_ROLES)
def each_role(request) -> str:
    return request.param
