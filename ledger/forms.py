"""Admin forms of the ledger (adjustment requests and decisions)."""

from django import forms
from unfold.widgets import (
    UnfoldAdminIntegerFieldWidget,
    UnfoldAdminSelectWidget,
    UnfoldAdminTextareaWidget,
    UnfoldAdminTextInputWidget,
    UnfoldBooleanSwitchWidget,
)

from accounts.models import Merchant
from core.money import CURRENCY_EXPONENTS, MAX_AMOUNT
from ledger.models.adjustments import ADJUSTABLE_CODES, ADJUSTMENT_TYPES
from ledger.services.adjustments import REASON_MAX_LENGTH

CODE_CHOICES = [(code.value, code.label) for code in ADJUSTABLE_CODES]


class AdjustmentRequestForm(forms.Form):
    """What should move and why; a second finance or admin user approves it."""

    merchant = forms.ModelChoiceField(queryset=Merchant.objects.order_by("name"), widget=UnfoldAdminSelectWidget)
    livemode = forms.BooleanField(required=False, widget=UnfoldBooleanSwitchWidget, help_text="Off: the test mode's books.")
    currency = forms.ChoiceField(choices=[(c, c) for c in sorted(CURRENCY_EXPONENTS)], initial="USD", widget=UnfoldAdminSelectWidget)
    amount = forms.IntegerField(min_value=1, max_value=MAX_AMOUNT, widget=UnfoldAdminIntegerFieldWidget,
                                help_text="In minor units of the currency (1999 is 19.99 USD).")
    debit_code = forms.ChoiceField(label="Debit", choices=CODE_CHOICES, widget=UnfoldAdminSelectWidget,
                                   help_text="Debiting the merchant's available funds takes from the merchant.")
    credit_code = forms.ChoiceField(label="Credit", choices=CODE_CHOICES, widget=UnfoldAdminSelectWidget,
                                    initial="merchant_available",
                                    help_text="Crediting the merchant's available funds gives to the merchant.")
    gateway = forms.CharField(required=False, max_length=20, widget=UnfoldAdminTextInputWidget,
                              help_text="Only when one side is a gateway's clearing account (stripe, paypal, simulator).")
    balance_type = forms.ChoiceField(label="Shown to the merchant as", choices=[(t.value, t.label) for t in ADJUSTMENT_TYPES],
                                     widget=UnfoldAdminSelectWidget)
    reason = forms.CharField(max_length=REASON_MAX_LENGTH, strip=False, widget=UnfoldAdminTextareaWidget(attrs={"rows": 3}))
    source_id = forms.CharField(label="Reconciliation item", required=False, max_length=64, widget=UnfoldAdminTextInputWidget,
                                help_text="The item it corrects, if any.")


class AdjustmentRejectForm(forms.Form):
    reason = forms.CharField(max_length=REASON_MAX_LENGTH, strip=False, required=False,
                             widget=UnfoldAdminTextareaWidget(attrs={"rows": 2}))
