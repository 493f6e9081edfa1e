"""Staff password rules beyond Django's own validators (AUTH_PASSWORD_VALIDATORS in
flowpay/settings/security.py): letters and digits (PCI DSS 8.3.6), and not one of the last
passwords (8.3.7).

Rule: a password is never stored or logged; the history keeps the hashes Django made, and a
candidate is checked against them with check_password (Argon2: slow on purpose)."""

from django.contrib.auth.hashers import check_password
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from accounts.selectors import password_hashes_recent
from accounts.services.passwords import password_history_record


class LettersAndDigitsValidator:
    """At least one letter and at least one digit."""

    def validate(self, password: str, user=None) -> None:
        if not any(ch.isalpha() for ch in password) or not any(ch.isdigit() for ch in password):
            raise ValidationError(_("This password must contain both letters and digits."))

    def get_help_text(self) -> str:
        return _("Your password must contain both letters and digits.")


class PasswordHistoryValidator:
    """Not the current password nor one of the `remembered` most recent ones. Django calls
    password_changed() after a form sets a new password; that records its hash."""

    def __init__(self, remembered: int = 4):
        self.remembered = remembered

    def validate(self, password: str, user=None) -> None:
        if user is None or user.pk is None:
            return
        for encoded in password_hashes_recent(user=user, count=self.remembered):
            if check_password(password, encoded):
                raise ValidationError(
                    ngettext(
                        "This password was used recently: choose one that is not your last password.",
                        "This password was used recently: choose one that is none of your last %(count)d passwords.",
                        self.remembered,
                    ),
                    params={"count": self.remembered},
                )

    def password_changed(self, password: str, user=None) -> None:
        if user is None or user.pk is None:
            return
        password_history_record(user=user)

    def get_help_text(self) -> str:
        return ngettext(
            "Your password cannot be your last password.",
            "Your password cannot be one of your last %(count)d passwords.",
            self.remembered,
        ) % {"count": self.remembered}
