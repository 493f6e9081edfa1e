"""Staff roles and the capabilities they hold: the one place that says who may do what.

Staff roles are Django groups of these names (created by a data migration); a superuser
counts as `admin`. API views, admin pages and services never name roles: they ask for a
capability (`roles_can(roles, Capability.REFUND_CREATE)`), and CAPABILITY_ROLES below says
which roles hold it. A staff Actor carries its roles (core.actors), loaded once when it is
built. Merchant API keys hold no roles: which endpoints they reach is each view's `merchant`
flag (core.api.permissions), and the services keep them to their own merchant's objects.

Where two surfaces grant different roles the same kind of access, they are two capabilities
(the API lets every staff role read refunds, the back office's refund pages are for
support, finance, auditor and admin; capturing a payment is for support and admin, re-sending
a webhook for support, operator and admin).

| capability            | finance | support | operator | auditor | admin | checked by                                            |
|-----------------------|---------|---------|----------|---------|-------|-------------------------------------------------------|
| transaction.read      | yes     | yes     | yes      | yes     | yes   | API: list / retrieve payments; admin: the payments    |
|                       |         |         |          |         |       | list and each payment's timeline                      |
| transaction.capture   |         | yes     |          |         | yes   | API: capture a payment                                |
| transaction.cancel    |         | yes     |          |         | yes   | API: cancel (void) a payment                          |
| customer.read         | yes     | yes     | yes      | yes     | yes   | API: customers and their saved payment methods        |
| refund.read           | yes     | yes     | yes      | yes     | yes   | API: list / retrieve refunds                          |
| refund.create         | yes     | yes     |          |         | yes   | API, service; admin: a payment's page and Refund form |
| refund.retry          | yes     | yes     |          |         | yes   | API, service, admin: retry a failed refund            |
| refund.approve        | yes     |         |          |         | yes   | API, service, admin: approve / reject (four-eyes);    |
|                       |         |         |          |         |       | service: never held by the support refund limit       |
| chargeback.read       | yes     | yes     | yes      | yes     | yes   | API: list / retrieve chargebacks                      |
| chargeback.record     | yes     | yes     |          |         | yes   | API, service: record a chargeback on a payment        |
| chargeback.respond    | yes     | yes     |          |         | yes   | API, service, admin: submit evidence, accept          |
| chargeback.outcome    | yes     |         |          |         | yes   | API, service, admin: record won / lost                |
| backoffice.refunds    | yes     | yes     |          | yes     | yes   | admin: open the refund and chargeback pages           |
| subscription.read     | yes     | yes     | yes      | yes     | yes   | API: plans, subscriptions, invoices; admin: their     |
|                       |         |         |          |         |       | lists, dead rebill jobs                               |
| webhook.read          | yes     | yes     | yes      | yes     | yes   | API: webhook endpoints and deliveries                 |
| event.read            | yes     | yes     | yes      | yes     | yes   | API: list / retrieve events                           |
| webhook.resend        |         | yes     | yes      |         | yes   | API: re-send a webhook delivery                       |
| reconciliation.read   | yes     |         |          |         | yes   | API, admin: reconciliation runs and items             |
| reconciliation.resolve| yes     |         |          |         | yes   | API, service, admin: investigate, resolve, ignore,    |
|                       |         |         |          |         |       | request, approve (four-eyes) and reject adjustments   |
| inbox.read            |         |         | yes      |         | yes   | admin: the inbox of gateway events                    |
| inbox.replay          |         |         | yes      |         | yes   | admin: replay gateway events                          |
| fraud.read            | yes     | yes     | yes      | yes     | yes   | API: fraud rules, lists, reviews; admin: their pages   |
| fraud.lists           | yes     | yes     |          |         | yes   | admin: add to / remove from a merchant's fraud lists  |
| fraud.rules           |         |         |          |         | yes   | API: the platform-wide fraud rules                    |
| fraud.review          | yes     | yes     |          |         | yes   | API: approve / reject a payment held for review       |
| ops.switch_gateway    |         |         | yes      |         |       | ops API: primary gateway, fallback, simplified flow   |
| ops.system            |         |         | yes      |         |       | ops API: reload gateway keys, refresh DB connections  |
| ledger.read           | yes     | yes     |          | yes     | yes   | API: balance, balance transactions, payouts; admin:   |
|                       |         |         |          |         |       | ledger accounts, transactions, payouts (read-only)    |
| ledger.adjust         | yes     |         |          |         | yes   | admin, service: request a ledger adjustment           |
| ledger.adjust_approve | yes     |         |          |         | yes   | admin, service: approve / reject one (four-eyes: not  |
|                       |         |         |          |         |       | the requester)                                        |
| staff.security        |         |         |          |         | yes   | admin: reset a user's MFA, unlock a locked username   |
| backoffice.overview   | yes     |         | yes      | yes     | yes   | admin: the dashboard overview (the admin's home)      |
| backoffice.gateways   |         |         | yes      |         | yes   | admin: the gateways page (its switches: ops.*)        |
| audit.read            | yes     |         |          | yes     | yes   | admin: the audit log browser, its entries and export  |
| audit.verify          |         |         |          | yes     | yes   | admin: "verify now" on the audit log's chain          |
| rebill.requeue        |         |         | yes      |         | yes   | admin: re-queue dead rebill jobs (dead letters)       |

Admin pages not listed here (merchants and keys, payments' customers and attempts, plans,
rebill jobs, webhooks) follow Django's per-model permissions only. The dashboard's pages
(backoffice.dashboard) show each section to the roles holding its read capability and each
button to those holding its action's.
"""

from collections.abc import Iterable, Mapping
from enum import StrEnum
from types import MappingProxyType

FINANCE = "finance"
SUPPORT = "support"
OPERATOR = "operator"
AUDITOR = "auditor"
ADMIN = "admin"

STAFF_ROLES = (FINANCE, SUPPORT, OPERATOR, AUDITOR, ADMIN)


class Capability(StrEnum):
    TRANSACTION_READ = "transaction.read"
    TRANSACTION_CAPTURE = "transaction.capture"
    TRANSACTION_CANCEL = "transaction.cancel"
    CUSTOMER_READ = "customer.read"
    REFUND_READ = "refund.read"
    REFUND_CREATE = "refund.create"
    REFUND_RETRY = "refund.retry"
    REFUND_APPROVE = "refund.approve"
    CHARGEBACK_READ = "chargeback.read"
    CHARGEBACK_RECORD = "chargeback.record"
    CHARGEBACK_RESPOND = "chargeback.respond"
    CHARGEBACK_OUTCOME = "chargeback.outcome"
    BACKOFFICE_REFUNDS = "backoffice.refunds"
    SUBSCRIPTION_READ = "subscription.read"
    WEBHOOK_READ = "webhook.read"
    EVENT_READ = "event.read"
    WEBHOOK_RESEND = "webhook.resend"
    RECONCILIATION_READ = "reconciliation.read"
    RECONCILIATION_RESOLVE = "reconciliation.resolve"
    INBOX_READ = "inbox.read"
    INBOX_REPLAY = "inbox.replay"
    FRAUD_READ = "fraud.read"
    FRAUD_LISTS = "fraud.lists"
    FRAUD_RULES = "fraud.rules"
    FRAUD_REVIEW = "fraud.review"
    OPS_SWITCH_GATEWAY = "ops.switch_gateway"
    OPS_SYSTEM = "ops.system"
    LEDGER_READ = "ledger.read"
    LEDGER_ADJUST = "ledger.adjust"
    LEDGER_ADJUST_APPROVE = "ledger.adjust_approve"
    STAFF_SECURITY = "staff.security"
    BACKOFFICE_OVERVIEW = "backoffice.overview"
    BACKOFFICE_GATEWAYS = "backoffice.gateways"
    AUDIT_READ = "audit.read"
    AUDIT_VERIFY = "audit.verify"
    REBILL_REQUEUE = "rebill.requeue"


ANY_STAFF = frozenset(STAFF_ROLES)
# Who may move money back to a customer; the approvers also approve others' refunds.
REFUNDERS = frozenset({SUPPORT, FINANCE, ADMIN})
APPROVERS = frozenset({FINANCE, ADMIN})

CAPABILITY_ROLES: Mapping[Capability, frozenset[str]] = MappingProxyType({
    Capability.TRANSACTION_READ: ANY_STAFF,
    Capability.TRANSACTION_CAPTURE: frozenset({SUPPORT, ADMIN}),
    Capability.TRANSACTION_CANCEL: frozenset({SUPPORT, ADMIN}),
    Capability.CUSTOMER_READ: ANY_STAFF,
    Capability.REFUND_READ: ANY_STAFF,
    Capability.REFUND_CREATE: REFUNDERS,
    Capability.REFUND_RETRY: REFUNDERS,
    Capability.REFUND_APPROVE: APPROVERS,
    Capability.CHARGEBACK_READ: ANY_STAFF,
    Capability.CHARGEBACK_RECORD: REFUNDERS,
    Capability.CHARGEBACK_RESPOND: REFUNDERS,
    Capability.CHARGEBACK_OUTCOME: APPROVERS,
    Capability.BACKOFFICE_REFUNDS: REFUNDERS | {AUDITOR},
    Capability.SUBSCRIPTION_READ: ANY_STAFF,
    Capability.WEBHOOK_READ: ANY_STAFF,
    Capability.EVENT_READ: ANY_STAFF,
    Capability.WEBHOOK_RESEND: frozenset({SUPPORT, OPERATOR, ADMIN}),
    Capability.RECONCILIATION_READ: APPROVERS,
    Capability.RECONCILIATION_RESOLVE: APPROVERS,
    Capability.INBOX_READ: frozenset({OPERATOR, ADMIN}),
    Capability.INBOX_REPLAY: frozenset({OPERATOR, ADMIN}),
    Capability.FRAUD_READ: ANY_STAFF,
    Capability.FRAUD_LISTS: REFUNDERS,
    Capability.FRAUD_RULES: frozenset({ADMIN}),
    # Approving captures and rejecting may refund: the people who move money back.
    Capability.FRAUD_REVIEW: REFUNDERS,
    # The runbook's switches belong to the operator role alone: admins and superusers do not
    # hold them unless they are also in the operator group.
    Capability.OPS_SWITCH_GATEWAY: frozenset({OPERATOR}),
    Capability.OPS_SYSTEM: frozenset({OPERATOR}),
    # Merchant money: every role that deals with it (operators run the platform, not the books).
    Capability.LEDGER_READ: frozenset({FINANCE, SUPPORT, AUDITOR, ADMIN}),
    Capability.LEDGER_ADJUST: APPROVERS,
    Capability.LEDGER_ADJUST_APPROVE: APPROVERS,
    Capability.STAFF_SECURITY: frozenset({ADMIN}),
    # The figures are for the people who watch the money and the platform; support works
    # from the lists. The gateways page shows the switches to admins, who cannot flip them.
    Capability.BACKOFFICE_OVERVIEW: frozenset({FINANCE, OPERATOR, AUDITOR, ADMIN}),
    Capability.BACKOFFICE_GATEWAYS: frozenset({OPERATOR, ADMIN}),
    # The evidence is read by the people who answer for the books and by the auditors; only
    # the auditors (and admins) run the chain's verification from the page.
    Capability.AUDIT_READ: frozenset({FINANCE, AUDITOR, ADMIN}),
    Capability.AUDIT_VERIFY: frozenset({AUDITOR, ADMIN}),
    # Dead rebill jobs failed for platform reasons: the operators who run the workers re-queue them.
    Capability.REBILL_REQUEUE: frozenset({OPERATOR, ADMIN}),
})


def roles_can(roles: Iterable[str], capability: Capability) -> bool:
    """Whether any of `roles` holds `capability`."""
    return not CAPABILITY_ROLES[capability].isdisjoint(roles)


def capability_roles(capability: Capability) -> tuple[str, ...]:
    """The roles holding `capability`, in STAFF_ROLES order (for messages)."""
    return tuple(role for role in STAFF_ROLES if role in CAPABILITY_ROLES[capability])


def user_roles(user) -> frozenset[str]:
    """A staff user's roles: their groups among STAFF_ROLES, plus admin for a superuser.
    An inactive (or missing) user has none."""
    if user is None or not getattr(user, "is_active", False):
        return frozenset()
    roles = set(user.groups.filter(name__in=STAFF_ROLES).values_list("name", flat=True))
    if user.is_superuser:
        roles.add(ADMIN)
    return frozenset(roles)
