"""Admin forms of the refunds app (support's manual refund, approval decisions)."""

from django import forms
from unfold.widgets import (
    UnfoldAdminIntegerFieldWidget,
    UnfoldAdminSelectWidget,
    UnfoldAdminTextareaWidget,
    UnfoldBooleanSwitchWidget,
)

from core.money import MAX_AMOUNT
from refunds.services.policy import REASON_MAX_LENGTH


class TransactionRefundForm(forms.Form):
    """Support's manual refund. The service decides everything else (state, limit, approval)."""

    amount = forms.IntegerField(
        min_value=1, max_value=MAX_AMOUNT, widget=UnfoldAdminIntegerFieldWidget,
        help_text="In minor units of the payment's currency (1999 is 19.99 USD).",
    )
    # Stored verbatim: not stripped; the service refuses a blank reason from staff.
    reason = forms.CharField(
        max_length=REASON_MAX_LENGTH, strip=False, widget=UnfoldAdminTextareaWidget(attrs={"rows": 3}),
    )
    refund_to_original_method = forms.BooleanField(
        required=False, initial=True, widget=UnfoldBooleanSwitchWidget,
        help_text="Off: an off-gateway credit (bank transfer, store credit) settled manually; no gateway call.",
    )


class RefundRejectForm(forms.Form):
    reason = forms.CharField(
        max_length=REASON_MAX_LENGTH, strip=False, required=False, widget=UnfoldAdminTextareaWidget(attrs={"rows": 2}),
    )


class ChargebackOutcomeForm(forms.Form):
    outcome = forms.ChoiceField(choices=[("won", "Won (funds reinstated)"), ("lost", "Lost (funds withdrawn)")],
                                widget=UnfoldAdminSelectWidget)
