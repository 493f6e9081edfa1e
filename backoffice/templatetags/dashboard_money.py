"""`{{ row|money }}`: an object's amount in its currency's decimals ("19.99 USD", "1999 JPY")."""

from django import template

from core.money import format_minor_units

register = template.Library()


@register.filter
def money(obj, field: str = "amount") -> str:
    amount = getattr(obj, field, None)
    return "" if amount is None else format_minor_units(amount, obj.currency)
