"""DRF permission classes from capabilities (core.permissions): every API view says which
capability its staff callers need and whether merchant API keys may call it."""

import functools

from rest_framework.permissions import BasePermission

from core.permissions import Capability, capability_roles, roles_can


@functools.cache
def capability_permission(capability: Capability | None = None, *, merchant: bool = False) -> type[BasePermission]:
    """A permission class admitting merchant API keys (when `merchant`) and staff tokens
    whose roles hold `capability` (none when it is None: a merchant-only endpoint).
    ApiView.perform_authentication sets request.merchant and request.actor (with its roles)."""
    if capability is None and not merchant:
        raise ValueError("A permission needs a capability, merchant access, or both.")
    roles = ", ".join(capability_roles(capability)) if capability is not None else ""
    if capability is None:
        message = "This endpoint needs a merchant API key."
    elif merchant:
        message = f"This endpoint needs a merchant API key or a staff token with one of the roles: {roles}."
    else:
        message = f"This endpoint needs a staff token with one of the roles: {roles}."

    class CapabilityPermission(BasePermission):
        def has_permission(self, request, view):
            if getattr(request, "merchant", None) is not None:
                return merchant
            actor = getattr(request, "actor", None)
            return capability is not None and actor is not None and roles_can(actor.roles, capability)

    CapabilityPermission.message = message
    CapabilityPermission.__qualname__ = f"capability_permission({capability}, merchant={merchant})"
    return CapabilityPermission


# Writes on a merchant's own objects (payments, customers, endpoints, plans): no staff role.
MerchantOnly = capability_permission(merchant=True)
