"""The rebill jobs admin offers "Re-queue dead jobs" exactly to the roles core.permissions
gives rebill.requeue, as the dashboard's dead letters do."""

import pytest
from django.contrib import admin
from django.test import RequestFactory

from core.permissions import STAFF_ROLES, Capability, roles_can
from subscriptions.models import RebillJob

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("role", STAFF_ROLES)
def test_the_requeue_action_is_offered_to_the_roles_that_may_requeue(staff_user, role):
    request = RequestFactory().get("/admin/subscriptions/rebilljob/")
    request.user = staff_user(f"{role}-user", role)

    offered = "requeue_dead" in admin.site._registry[RebillJob].get_actions(request)

    assert offered is roles_can([role], Capability.REBILL_REQUEUE)
