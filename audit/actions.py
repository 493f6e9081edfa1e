"""The audit log's vocabulary: every action an entry can record.

Rule: an action is `<object>.<what happened>`, dotted lowercase, and it is registered here
before anything records it; audit_record refuses anything but an AuditAction member. The
stored value is the member's string, so renaming a value breaks the history, the PCI report
and every query over the log: add a member, never rename one.
"""

from enum import StrEnum, unique


@unique
class AuditAction(StrEnum):
    # Merchants, credentials and staff users
    MERCHANT_CREATE = "merchant.create"
    API_KEY_CREATE = "api_key.create"
    API_KEY_REVOKE = "api_key.revoke"
    STAFF_TOKEN_CREATE = "staff_token.create"
    STAFF_TOKEN_REVOKE = "staff_token.revoke"
    STAFF_USER_CREATE = "staff_user.create"
    STAFF_USER_PASSWORD_RESET = "staff_user.password_reset"

    # Staff authentication (PCI DSS 10.2.1.4, 10.2.1.5): every one carries the actor, the
    # time, the origin IP and the result, a failure its reason; never a password, code,
    # secret or token.
    STAFF_USER_SIGN_IN = "staff_user.sign_in"
    STAFF_USER_SIGN_OUT = "staff_user.sign_out"
    STAFF_USER_LOCKED = "staff_user.locked"
    STAFF_USER_UNLOCKED = "staff_user.unlocked"
    STAFF_USER_MFA_ENROL = "staff_user.mfa_enrol"
    STAFF_USER_MFA_RESET = "staff_user.mfa_reset"
    STAFF_USER_RECOVERY_CODE_USED = "staff_user.recovery_code_used"
    STAFF_USER_PASSWORD_CHANGE = "staff_user.password_change"
    STAFF_USER_ROLES_CHANGE = "staff_user.roles_change"
    STAFF_TOKEN_REFUSED = "staff_token.refused"

    # Security
    SECURITY_CARD_DATA_REJECTED = "security.card_data_rejected"

    # Runtime switches: one action per switch (core.runtime), and the failed key reload
    RUNTIME_PRIMARY_GATEWAY = "runtime.primary_gateway"
    RUNTIME_FALLBACK_MODE = "runtime.fallback_mode"
    RUNTIME_SIMPLIFIED_FLOW = "runtime.simplified_flow"
    RUNTIME_CREDENTIALS_VERSION = "runtime.credentials_version"
    RUNTIME_DB_CONNECTIONS_VERSION = "runtime.db_connections_version"
    RUNTIME_CREDENTIALS_RELOAD = "runtime.credentials_reload"

    # Customers and payment methods
    CUSTOMER_CREATE = "customer.create"
    PAYMENT_METHOD_ATTACH = "payment_method.attach"

    # Transactions
    TRANSACTION_CREATE = "transaction.create"
    TRANSACTION_PROCESSING = "transaction.processing"
    TRANSACTION_RETRY = "transaction.retry"
    TRANSACTION_FAILOVER = "transaction.failover"
    TRANSACTION_AUTHORIZED = "transaction.authorized"
    TRANSACTION_COMPLETED = "transaction.completed"
    TRANSACTION_REQUIRES_ACTION = "transaction.requires_action"
    TRANSACTION_FAILED = "transaction.failed"
    TRANSACTION_OUTCOME_UNKNOWN = "transaction.outcome_unknown"
    TRANSACTION_CAPTURE = "transaction.capture"
    TRANSACTION_CANCEL = "transaction.cancel"
    TRANSACTION_PARTIALLY_REFUNDED = "transaction.partially_refunded"
    TRANSACTION_REFUNDED = "transaction.refunded"
    TRANSACTION_DISPUTED = "transaction.disputed"
    TRANSACTION_RESOLVED = "transaction.resolved"
    TRANSACTION_RESOLVED_FORCED = "transaction.resolved_forced"
    TRANSACTION_RECOVERED = "transaction.recovered"
    TRANSACTION_RECOVERED_FORCED = "transaction.recovered_forced"
    TRANSACTION_RECORDED_FROM_GATEWAY = "transaction.recorded_from_gateway"
    TRANSACTION_FRAUD_BLOCKED = "transaction.fraud_blocked"
    TRANSACTION_REVIEW_HOLD = "transaction.review_hold"

    # Fraud screening: rules, lists, the review queue
    FRAUD_RULE_CREATE = "fraud_rule.create"
    FRAUD_RULE_UPDATE = "fraud_rule.update"
    FRAUD_RULE_DISABLE = "fraud_rule.disable"
    FRAUD_LIST_ITEM_ADD = "fraud_list_item.add"
    FRAUD_LIST_ITEM_REMOVE = "fraud_list_item.remove"
    FRAUD_REVIEW_OPEN = "fraud_review.open"
    FRAUD_REVIEW_APPROVE = "fraud_review.approve"
    FRAUD_REVIEW_REJECT = "fraud_review.reject"
    FRAUD_REVIEW_FAILED = "fraud_review.failed"

    # Refunds
    REFUND_CREATE = "refund.create"
    REFUND_APPROVE = "refund.approve"
    REFUND_REJECT = "refund.reject"
    REFUND_PROCESSING = "refund.processing"
    REFUND_CLAIM_EXPIRED = "refund.claim_expired"
    REFUND_ATTEMPT_FAILED = "refund.attempt_failed"
    REFUND_RETRY = "refund.retry"
    REFUND_RECOVERED = "refund.recovered"
    REFUND_SUCCEEDED = "refund.succeeded"
    REFUND_FAILED = "refund.failed"
    REFUND_OVER_REFUND_ALERT = "refund.over_refund_alert"
    REFUND_OUTCOME_RESOLVED = "refund.outcome_resolved"

    # Chargebacks
    CHARGEBACK_CREATE = "chargeback.create"
    CHARGEBACK_EVIDENCE_SUBMITTED = "chargeback.evidence_submitted"
    CHARGEBACK_UNDER_REVIEW = "chargeback.under_review"
    CHARGEBACK_ACCEPT = "chargeback.accept"
    CHARGEBACK_WON = "chargeback.won"
    CHARGEBACK_LOST = "chargeback.lost"

    # Payouts, ledger adjustments and the ledger's operator commands
    PAYOUT_CREATE = "payout.create"
    PAYOUT_ATTEMPT_FAILED = "payout.attempt_failed"
    PAYOUT_IN_TRANSIT = "payout.in_transit"
    PAYOUT_PAID = "payout.paid"
    PAYOUT_FAILED = "payout.failed"
    LEDGER_ADJUSTMENT_REQUEST = "ledger_adjustment.request"
    LEDGER_ADJUSTMENT_APPROVE = "ledger_adjustment.approve"
    LEDGER_ADJUSTMENT_REJECT = "ledger_adjustment.reject"
    LEDGER_SETTINGS_UPDATE = "ledger_settings.update"
    LEDGER_FUNDS_RELEASED = "ledger.funds_released"
    LEDGER_BACKFILL = "ledger.backfill"
    LEDGER_VERIFY = "ledger.verify"
    # Reconciliation runs and their items
    RECONCILIATION_RUN_COMPLETED = "reconciliation_run.completed"
    RECONCILIATION_ITEM_INVESTIGATE = "reconciliation_item.investigate"
    RECONCILIATION_ITEM_RESOLVE = "reconciliation_item.resolve"
    RECONCILIATION_ITEM_IGNORE = "reconciliation_item.ignore"
    RECONCILIATION_ITEM_ADJUSTMENT_REQUEST = "reconciliation_item.adjustment_request"
    RECONCILIATION_ITEM_ADJUSTMENT_APPROVE = "reconciliation_item.adjustment_approve"
    RECONCILIATION_ITEM_ADJUSTMENT_REJECT = "reconciliation_item.adjustment_reject"
    RECONCILIATION_ITEM_CLEARED = "reconciliation_item.cleared"
    RECONCILIATION_ITEM_REOPENED = "reconciliation_item.reopened"

    # Inbound gateway events
    INBOUND_EVENT_REPLAY = "inbound_event.replay"

    # Merchant webhooks
    WEBHOOK_ENDPOINT_CREATE = "webhook_endpoint.create"
    WEBHOOK_ENDPOINT_DELETE = "webhook_endpoint.delete"
    WEBHOOK_DELIVERY_RESEND = "webhook_delivery.resend"

    # Plans and subscription settings
    PLAN_CREATE = "plan.create"
    PLAN_DEACTIVATE = "plan.deactivate"
    SUBSCRIPTION_SETTINGS_UPDATE = "subscription_settings.update"

    # Subscriptions
    SUBSCRIPTION_CREATE = "subscription.create"
    SUBSCRIPTION_UPDATE = "subscription.update"
    SUBSCRIPTION_ACTIVE = "subscription.active"
    SUBSCRIPTION_PAST_DUE = "subscription.past_due"
    SUBSCRIPTION_UNPAID = "subscription.unpaid"
    SUBSCRIPTION_PAUSED = "subscription.paused"
    SUBSCRIPTION_RESUMED = "subscription.resumed"
    SUBSCRIPTION_CANCEL_AT_PERIOD_END = "subscription.cancel_at_period_end"
    SUBSCRIPTION_CANCELED = "subscription.canceled"

    # Invoices
    INVOICE_OPEN = "invoice.open"
    INVOICE_PAID = "invoice.paid"
    INVOICE_PAID_AFTER_CLOSE = "invoice.paid_after_close"
    INVOICE_PAYMENT_FAILED = "invoice.payment_failed"
    INVOICE_UNCOLLECTIBLE = "invoice.uncollectible"
    INVOICE_VOID = "invoice.void"

    # Rebill jobs
    REBILL_JOB_SUCCEEDED = "rebill_job.succeeded"
    REBILL_JOB_FAILED = "rebill_job.failed"
    REBILL_JOB_RETRY = "rebill_job.retry"
    REBILL_JOB_RETRY_SCHEDULED = "rebill_job.retry_scheduled"
    REBILL_JOB_REAPED = "rebill_job.reaped"
    REBILL_JOB_DEAD = "rebill_job.dead"
    REBILL_JOB_REQUEUE = "rebill_job.requeue"

    # The audit log itself and the back office's exports
    AUDIT_LOG_VERIFY = "audit_log.verify"
    EXPORT_REQUEST = "export.request"
    EXPORT_COMPLETE = "export.complete"
    EXPORT_DOWNLOAD = "export.download"
    EXPORT_EXPIRE = "export.expire"


def audit_action_checked(action: object) -> AuditAction:
    """`action` itself when it is an AuditAction member. Anything else, a plain string that
    spells a member included, is a TypeError: every producer names its member, so that
    finding the member's uses finds everything that records it."""
    if not isinstance(action, AuditAction):
        raise TypeError(f"an audit action must be an AuditAction member, not {action!r}")
    return action
