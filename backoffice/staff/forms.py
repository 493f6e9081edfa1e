"""Forms of the staff sign-in pages (unfold widgets, so they look like the rest of the admin)."""

from django import forms
from unfold.widgets import UnfoldAdminIntegerFieldWidget, UnfoldAdminPasswordWidget, UnfoldAdminTextInputWidget


class SignInForm(forms.Form):
    username = forms.CharField(max_length=150, widget=UnfoldAdminTextInputWidget(attrs={"autofocus": True, "autocomplete": "username"}))
    password = forms.CharField(strip=False, widget=UnfoldAdminPasswordWidget(attrs={"autocomplete": "current-password"}))
    otp_token = forms.CharField(
        label="Authenticator code", required=False, max_length=32,
        help_text="The 6-digit code of your authenticator app, or one of your recovery codes. "
                  "Leave it empty only for your first sign-in, before you have enrolled an authenticator.",
        widget=UnfoldAdminTextInputWidget(attrs={"autocomplete": "one-time-code", "inputmode": "text"}),
    )


class CodeForm(forms.Form):
    code = forms.CharField(
        label="Code from your authenticator", max_length=32,
        widget=UnfoldAdminTextInputWidget(attrs={"autocomplete": "one-time-code", "autofocus": True}),
    )


class StaffTokenIssueForm(forms.Form):
    label = forms.CharField(max_length=100, required=False, help_text="What the token is for (shown in lists).",
                            widget=UnfoldAdminTextInputWidget())
    expires_in_hours = forms.IntegerField(
        label="Expires in (hours)", min_value=1, widget=UnfoldAdminIntegerFieldWidget(),
        help_text="At most the longest lifetime allowed (30 days, 720 hours, unless configured shorter).",
    )
    code = forms.CharField(
        label="Code from your authenticator", required=False, max_length=32,
        help_text="Needed when you last passed your second factor more than a few minutes ago.",
        widget=UnfoldAdminTextInputWidget(attrs={"autocomplete": "one-time-code"}),
    )

