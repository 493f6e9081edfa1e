"""What the API base needs to know about who is calling. The bearer-token authentication that
produces these principals is accounts.authentication (configured in REST_FRAMEWORK); the
kernel knows only the shape of what it returns."""

from dataclasses import dataclass
from typing import Any


@dataclass
class MerchantPrincipal:
    """request.user for calls made with a merchant API key."""

    merchant: Any  # accounts.Merchant
    api_key: Any  # accounts.ApiKey
    livemode: bool = False  # the key's environment: live (True) or test (False)
    is_authenticated: bool = True
    is_active: bool = True
    is_staff: bool = False
    is_superuser: bool = False
    pk: None = None

    def get_username(self) -> str:
        return self.api_key.prefix
