"""The capability mapping (core.permissions): complete, documented, carried by staff actors,
and what every API view asks for."""

import re
from types import SimpleNamespace

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.urls import URLPattern, URLResolver, get_resolver

import core.permissions
from core.actors import Actor, ActorType
from core.api.permissions import MerchantOnly, capability_permission
from core.api.views import ApiView
from core.errors import PermissionDenied
from core.permissions import (
    ADMIN,
    AUDITOR,
    CAPABILITY_ROLES,
    FINANCE,
    OPERATOR,
    STAFF_ROLES,
    SUPPORT,
    Capability,
    capability_roles,
    roles_can,
)
from refunds.models import Refund
from refunds.services.create import refund_create


def make_user(username: str, *roles: str, **fields):
    user = get_user_model().objects.create(username=username, is_staff=True, **fields)
    for role in roles:
        user.groups.add(Group.objects.get_or_create(name=role)[0])
    return user


# --- the mapping -----------------------------------------------------------------------------
def test_every_capability_maps_to_known_roles():
    assert set(CAPABILITY_ROLES) == set(Capability)
    for capability, roles in CAPABILITY_ROLES.items():
        assert roles, f"{capability} is held by no role"
        assert roles <= set(STAFF_ROLES), f"{capability} names unknown roles: {roles - set(STAFF_ROLES)}"


def test_the_docstring_table_is_the_mapping():
    documented: dict[str, set[str]] = {}
    for line in core.permissions.__doc__.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == len(STAFF_ROLES) + 2 and re.fullmatch(r"[a-z_]+\.[a-z_]+", cells[0]):
            documented[cells[0]] = {role for role, cell in zip(STAFF_ROLES, cells[1:-1], strict=True) if cell == "yes"}
    assert documented == {str(capability): set(roles) for capability, roles in CAPABILITY_ROLES.items()}


@pytest.mark.parametrize(
    ("roles", "capability", "expected"),
    [
        ({SUPPORT}, Capability.REFUND_CREATE, True),
        ({AUDITOR}, Capability.REFUND_CREATE, False),
        ({AUDITOR}, Capability.BACKOFFICE_REFUNDS, True),
        ({OPERATOR}, Capability.REFUND_READ, True),
        ({OPERATOR}, Capability.BACKOFFICE_REFUNDS, False),
        ({SUPPORT}, Capability.REFUND_APPROVE, False),
        ({SUPPORT, FINANCE}, Capability.REFUND_APPROVE, True),
        ({OPERATOR}, Capability.TRANSACTION_CAPTURE, False),  # capturing is support and admin
        ({OPERATOR}, Capability.WEBHOOK_RESEND, True),  # re-sending a webhook is also the operator's
        ({ADMIN}, Capability.OPS_SWITCH_GATEWAY, False),  # the runbook's switches: operators only
        ({OPERATOR}, Capability.OPS_SYSTEM, True),
        (set(), Capability.TRANSACTION_READ, False),
        ({"stranger"}, Capability.TRANSACTION_READ, False),
    ],
)
def test_roles_can(roles, capability, expected):
    assert roles_can(roles, capability) is expected


def test_capability_roles_are_listed_in_staff_roles_order():
    assert capability_roles(Capability.REFUND_CREATE) == (FINANCE, SUPPORT, ADMIN)
    assert capability_roles(Capability.TRANSACTION_READ) == STAFF_ROLES


# --- actors carry their roles ------------------------------------------------------------------
def test_a_staff_actor_carries_its_roles_loaded_once(db, django_assert_num_queries):
    user = make_user("sue", SUPPORT, FINANCE)
    Group.objects.create(name="not-a-role")
    user.groups.add(Group.objects.get(name="not-a-role"))
    with django_assert_num_queries(1):
        actor = Actor.staff(user=user, ip="203.0.113.9")
    assert actor.roles == frozenset({SUPPORT, FINANCE})
    with django_assert_num_queries(0):
        assert roles_can(actor.roles, Capability.REFUND_APPROVE)


def test_a_superuser_is_an_admin_and_an_inactive_user_has_no_roles(db):
    assert Actor.staff(user=make_user("root", is_superuser=True)).roles == frozenset({ADMIN})
    assert Actor.staff(user=make_user("gone", FINANCE, is_active=False)).roles == frozenset()


def test_other_actors_carry_no_roles():
    assert Actor.system("test").roles == frozenset()
    assert Actor.worker("refunds.execute").roles == frozenset()


def test_services_check_the_actors_roles_not_the_database(merchant_a, make_payment, queued_refunds):
    txn = make_payment(merchant_a, amount=5000)
    user = make_user("sam", SUPPORT)
    actor = Actor.staff(user=user)
    user.groups.clear()  # the actor was built with the support role: the service trusts it
    refund = refund_create(transaction_id=txn.pk, amount=100, reason="Goodwill", actor=actor)
    assert Refund.objects.filter(pk=refund.pk).exists()

    # an actor built without roles may not refund, whatever the user's groups say now
    user.groups.add(Group.objects.get(name=SUPPORT))
    roleless = Actor(type=actor.type, id=actor.id, user_id=user.pk)
    with pytest.raises(PermissionDenied):
        refund_create(transaction_id=txn.pk, amount=100, reason="Goodwill", actor=roleless)


# --- the DRF permission classes -------------------------------------------------------------------
def _request(*, merchant=None, roles=frozenset(), actor=True):
    staff = Actor(type=ActorType.STAFF, id="someone", user_id=1, roles=frozenset(roles)) if actor else None
    return SimpleNamespace(merchant=merchant, actor=staff)


def test_capability_permission_admits_merchants_when_asked_and_staff_holding_the_capability():
    refunders = capability_permission(Capability.REFUND_CREATE, merchant=True)
    approvers = capability_permission(Capability.REFUND_APPROVE)
    merchant = _request(merchant=object())
    assert refunders().has_permission(merchant, None)
    assert not approvers().has_permission(merchant, None)
    assert MerchantOnly().has_permission(merchant, None)
    assert refunders().has_permission(_request(roles={SUPPORT}), None)
    assert not approvers().has_permission(_request(roles={SUPPORT}), None)
    assert approvers().has_permission(_request(roles={FINANCE}), None)
    assert not MerchantOnly().has_permission(_request(roles={ADMIN}), None)
    assert not refunders().has_permission(_request(actor=False), None)
    assert "finance, support, admin" in refunders.message


def test_capability_permission_classes_are_shared_and_need_some_access():
    assert capability_permission(Capability.REFUND_READ, merchant=True) is capability_permission(
        Capability.REFUND_READ, merchant=True
    )
    with pytest.raises(ValueError):
        capability_permission()


def _api_views(resolver=None):
    for pattern in (resolver or get_resolver()).url_patterns:
        if isinstance(pattern, URLResolver):
            yield from _api_views(pattern)
        elif isinstance(pattern, URLPattern):
            view_class = getattr(pattern.callback, "cls", None)
            if view_class is not None and issubclass(view_class, ApiView):
                yield view_class


def test_every_api_view_asks_for_a_capability_permission():
    views = set(_api_views())
    assert len(views) > 20
    for view_class in views:
        for method in ("GET", "POST", "DELETE"):
            view = view_class()
            view.request = SimpleNamespace(method=method)
            permissions = view.get_permissions()
            assert permissions, view_class
            for permission in permissions:
                assert type(permission).__module__ == "core.api.permissions", (view_class, method, permission)

