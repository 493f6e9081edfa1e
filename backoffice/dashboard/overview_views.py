"""The overview: the admin's home for the roles holding backoffice.overview (finance,
operator, auditor, admin), through unfold's DASHBOARD_CALLBACK, and the same page at
/admin/dashboard/overview/ (403 for the other roles). Thin: parse the picker, call the
selectors, shape cards and charts for the template."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.urls import Resolver404, resolve
from django.utils import timezone

from backoffice.dashboard import overview_selectors as selectors
from backoffice.dashboard.display import changelist, delta, iso, money, money_value, percent, when
from backoffice.dashboard.rollup import dashboard_rollup_lag
from core.admin import staff_can
from core.permissions import Capability

DEFAULT_PERIOD = "7d"
PERIOD_CHOICES = (("today", "Today"), ("7d", "Last 7 days"), ("30d", "Last 30 days"), ("custom", "Custom range"))
MODE_CHOICES = (("live", "Live"), ("test", "Test"))
# Success rate per gateway is drawn hour by hour up to this many days, then day by day.
HOURLY_CHART_MAX_DAYS = 3


def _default_mode() -> str:
    return "live" if settings.FLOWPAY_API_KEY_ENVIRONMENT == "live" else "test"


def _picker(request) -> dict:
    """The period, currency and mode asked for, or an error for the page (nothing is read)."""
    params = request.GET
    today = timezone.now().date()
    key = params.get("period", DEFAULT_PERIOD)
    mode = params.get("mode") or _default_mode()
    picked = {"key": key, "first": params.get("from", ""), "last": params.get("to", ""), "mode": mode, "error": ""}
    try:
        picked["period"] = selectors.period_from(key=key, today=today, first=picked["first"], last=picked["last"])
    except ValueError as exc:
        picked["error"] = str(exc)
        return picked
    if mode not in dict(MODE_CHOICES):
        picked["error"] = f"Unknown mode '{mode[:20]}': choose live or test."
        return picked
    livemode = mode == "live"
    currencies = selectors.rollup_currencies(livemode=livemode)
    currency = (params.get("currency") or ("USD" if "USD" in currencies or not currencies else currencies[0])).upper()
    if currency not in currencies and params.get("currency"):
        picked["error"] = f"No {mode} payments in '{currency[:3]}'. Currencies: {', '.join(currencies) or 'none yet'}."
        return picked
    picked.update(currency=currency, currencies=currencies or [currency], livemode=livemode)
    return picked


def _card(key: str, title: str, value: str, *, href: str, previous: str = "", change: str = "", note: str = "") -> dict:
    return {"key": key, "title": title, "value": value, "href": href, "previous": previous, "delta": change, "note": note}


def _cards(picked: dict, now: selectors.PeriodFigures, before: selectors.PeriodFigures, open_now: selectors.OpenFigures) -> list[dict]:
    period, currency, livemode = picked["period"], picked["currency"], picked["livemode"]
    mode = "1" if livemode else "0"
    created = {"created_at__gte": iso(period.start), "created_at__lt": iso(period.end)}
    scoped = {**created, "currency__exact": currency, "livemode__exact": mode}
    payments = changelist("payments.transaction", **scoped)
    captured = changelist("payments.transaction", status__in=",".join(selectors.CAPTURED_STATES), **scoped)
    successful = {"status__in": ",".join(selectors.SUCCESSFUL_STATES), **scoped}
    refunds = changelist("refunds.refund", status__exact="succeeded", **scoped)
    disputes = changelist("refunds.chargeback", **scoped)

    def compared(key, title, current, previous, show, href):
        return _card(key, title, show(current), href=href, previous=show(previous), change=delta(current, previous))

    cash = lambda amount: money(amount, currency)  # noqa: E731
    cards = [
        compared("gross", "Gross volume", now.gross, before.gross, cash, captured),
        compared("refunds", "Refunds", now.refunds, before.refunds, cash, refunds),
        compared("disputes", "Disputes", now.disputes, before.disputes, cash, disputes),
        compared("net", "Net volume", now.net, before.net, cash, captured),
        compared("payments", "Payments", now.payments, before.payments, str, payments),
        compared("success-rate", "Success rate", now.success_rate, before.success_rate, percent,
                 changelist("payments.transaction", **successful)),
        compared("refund-rate", "Refund rate", now.refund_rate, before.refund_rate, percent, refunds),
        compared("dispute-rate", "Dispute rate", now.dispute_rate, before.dispute_rate, lambda r: percent(r, 2), disputes),
        compared("average-payment", "Average payment", now.average_payment, before.average_payment, cash, captured),
        compared("failed-rebills", "Failed rebills", now.failed_rebills, before.failed_rebills, str,
                 changelist("subscriptions.rebilljob", status__in="failed,dead", **created)),
        _card("mrr", "MRR", cash(open_now.mrr), note=f"{open_now.active_subscriptions} active subscriptions",
              href=changelist("subscriptions.subscription", status__exact="active", livemode__exact=mode)),
        _card("active-subscriptions", "Active subscriptions", str(open_now.active_subscriptions),
              href=changelist("subscriptions.subscription", status__exact="active", livemode__exact=mode)),
        _card("open-disputes", "Open disputes", str(open_now.open_disputes),
              note=f"evidence due first {when(open_now.nearest_evidence_due)}",
              href=changelist("refunds.chargeback", status__in="needs_response,under_review", currency__exact=currency,
                              livemode__exact=mode)),
        _card("open-reconciliation-items", "Open reconciliation items", str(open_now.open_reconciliation_items),
              href=changelist("reconciliation.reconciliationitem", state__in="open,investigating")),
        _card("dead-deliveries", "Webhook deliveries dead-lettered", str(open_now.dead_deliveries),
              href=changelist("webhooks.webhookdelivery", status__exact="dead")),
    ]
    for gateway, rate in now.per_gateway.items():
        previous = before.per_gateway.get(gateway)
        cards.append(compared(f"success-rate-{gateway}", f"Success rate: {gateway}", rate.rate, previous.rate if previous else None,
                              percent, changelist("payments.transaction", gateway__exact=gateway, **successful)))
    return cards


def _openable(request, href: str) -> bool:
    """Whether the user may open the changelist `href` (its admin's view permission)."""
    if not href:
        return False
    try:
        match = resolve(urlsplit(href).path)
    except Resolver404:
        return False
    model_admin = getattr(match.func, "model_admin", None)
    return bool(model_admin and model_admin.has_view_permission(request))


def _linked(request, cards: list[dict]) -> list[dict]:
    """A card links to its list only for who may open that list; others see the figure."""
    for card in cards:
        if not _openable(request, card["href"]):
            card["href"] = ""
    return cards


def _chart(labels: list[str], datasets: list[dict]) -> str:
    return json.dumps({"labels": labels, "datasets": datasets})


def _charts(picked: dict) -> dict:
    period, currency, livemode = picked["period"], picked["currency"], picked["livemode"]
    scope = {"period": period, "currency": currency, "livemode": livemode}
    volume = selectors.volume_per_day(**scope)
    hourly = period.days <= HOURLY_CHART_MAX_DAYS
    rates = selectors.success_rate_per_gateway(**scope, hourly=hourly)
    slots = sorted({slot for series in rates.values() for slot in series})
    declines = selectors.declines_by_code(**scope)
    rebills = selectors.rebill_outcomes(**scope)
    palette = ["var(--color-primary-600)", "var(--color-primary-300)", "#f59e0b", "#10b981", "#ef4444"]
    return {
        "volume": _chart([day.isoformat() for day in volume], [
            {"label": f"Gross volume ({currency})", "data": [money_value(v, currency) for v in volume.values()],
             "backgroundColor": palette[0]}]),
        "success_rate": _chart([slot.strftime("%m-%d %H:00" if hourly else "%Y-%m-%d") for slot in slots], [
            {"label": gateway, "borderColor": palette[n % len(palette)], "backgroundColor": palette[n % len(palette)],
             "data": [percent(series[slot].rate).removesuffix(" %") if slot in series else None for slot in slots]}
            for n, (gateway, series) in enumerate(rates.items())]),
        "success_rate_slot": "hour" if hourly else "day",
        "declines": _chart([code for code, _ in declines], [
            {"label": "Declined payments", "data": [n for _, n in declines], "backgroundColor": palette[4]}]),
        "rebills": _chart([status for status, _ in rebills], [
            {"label": "Rebill jobs", "data": [n for _, n in rebills], "backgroundColor": palette[1]}]),
        "has": {"volume": any(volume.values()), "success_rate": bool(slots), "declines": bool(declines), "rebills": bool(rebills)},
    }


def _refreshed(moment) -> str:
    return when(moment) if moment else "not yet (beat refreshes it every minute)"


def overview_context(request) -> dict:
    picked = _picker(request)
    overview = {"picked": picked, "periods": PERIOD_CHOICES, "modes": MODE_CHOICES, "as_of": _refreshed(dashboard_rollup_lag())}
    if not picked["error"]:
        period, currency, livemode = picked["period"], picked["currency"], picked["livemode"]
        current = selectors.period_figures(period=period, currency=currency, livemode=livemode)
        previous = selectors.period_figures(period=period.previous, currency=currency, livemode=livemode)
        open_now = selectors.open_figures(currency=currency, livemode=livemode)
        overview.update(
            cards=_linked(request, _cards(picked, current, previous, open_now)), charts=_charts(picked),
            range=f"{period.first_day} to {period.last_day}",
            previous_range=f"{period.previous.first_day} to {period.previous.last_day}",
        )
    return {"overview": overview}


def dashboard_callback(request, context: dict) -> dict:
    """unfold's DASHBOARD_CALLBACK: the admin's home shows the overview to the roles that may
    see it, and the stock list of models to the others (support)."""
    if staff_can(request, Capability.BACKOFFICE_OVERVIEW):
        context.update(overview_context(request), title="Overview")
    return context


def overview_page(request, site):
    if not staff_can(request, Capability.BACKOFFICE_OVERVIEW):
        raise PermissionDenied
    context = {**site.each_context(request), "title": "Overview", **overview_context(request)}
    status = 400 if context["overview"]["picked"]["error"] else 200
    return TemplateResponse(request, "admin/dashboard/overview.html", context, status=status)
