"""Admin forms of the reconciliation workflow."""

from django import forms
from unfold.widgets import UnfoldAdminSelectWidget, UnfoldAdminTextareaWidget, UnfoldAdminTextInputWidget

from reconciliation.models import Resolution
from reconciliation.services.items import REASON_MAX_LENGTH


class ItemResolveForm(forms.Form):
    resolution = forms.ChoiceField(
        choices=[(r.value, r.label) for r in Resolution], widget=UnfoldAdminSelectWidget,
        help_text="A ledger adjustment is requested here and posted when a second finance or admin user approves it.",
    )
    reason = forms.CharField(max_length=REASON_MAX_LENGTH, strip=False, widget=UnfoldAdminTextareaWidget(attrs={"rows": 3}))
    merchant = forms.CharField(
        max_length=40, required=False, widget=UnfoldAdminTextInputWidget,
        help_text="For create_local_record: the merchant (mer_…) the gateway's payment belongs to.",
    )


class ItemNoteForm(forms.Form):
    note = forms.CharField(max_length=REASON_MAX_LENGTH, strip=False, required=False,
                           widget=UnfoldAdminTextareaWidget(attrs={"rows": 2}))


class ItemRejectForm(forms.Form):
    reason = forms.CharField(max_length=REASON_MAX_LENGTH, strip=False, widget=UnfoldAdminTextareaWidget(attrs={"rows": 2}))
