"""Domain exceptions and the API's error codes. Services raise these; one API exception
handler renders them all in the error shape {"error": {"type", "code", "message", "param"}}.

Rule: every `code` FlowPay produces is an ErrorCode member (the OpenAPI schema lists them);
clients match on these strings, so a value is never renamed. The one exception is a code
FlowPay relays without defining it (a payment gateway's own code, see error_code_for)."""

from enum import StrEnum, unique
from typing import NewType


@unique
class ErrorCode(StrEnum):
    """The `code` of an API error. Each member carries its meaning (`description`)."""

    description: str

    def __new__(cls, value: str, description: str):
        member = str.__new__(cls, value)
        member._value_ = value
        member.description = description
        return member

    # The request itself
    INVALID_REQUEST = "invalid_request", "The request is not valid; the message says why."
    BAD_REQUEST = "bad_request", "The request could not be read at all (refused before it reached the API)."
    INVALID_JSON = "invalid_json", "The body is not valid JSON (NaN, Infinity, duplicate keys and nesting over 64 levels are refused too)."
    UNSUPPORTED_CONTENT_TYPE = "unsupported_content_type", "The body is not sent as application/json."
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type", (
        "The request declares a charset or Content-Encoding the API does not read (415): send UTF-8, uncompressed."
    )
    NOT_ACCEPTABLE = "not_acceptable", "The Accept header asks for a format the API does not serve."
    METHOD_NOT_ALLOWED = "method_not_allowed", "The endpoint does not take this HTTP method."
    RESOURCE_MISSING = "resource_missing", "No such object (or not the caller's), or no such endpoint."
    INVALID_STATE = "invalid_state", "The object's state does not allow the operation."
    CARD_DATA_NOT_ALLOWED = "card_data_not_allowed", "The request carries a card number: send a payment method token."

    # Parameters (`param` names the parameter)
    PARAMETER_MISSING = "parameter_missing", "A parameter this request needs is missing."
    PARAMETER_UNKNOWN = "parameter_unknown", "The endpoint takes no such parameter (read-only fields included)."
    AMOUNT_TOO_SMALL = "amount_too_small", "The amount is below the minimum."
    AMOUNT_TOO_LARGE = "amount_too_large", "The amount is above the maximum, or above what is left to capture or refund."
    INVALID_AMOUNT = "invalid_amount", "The amount is not an integer number of the currency's minor units."
    INVALID_CURRENCY = "invalid_currency", "No such ISO 4217 currency."
    INVALID_METADATA = "invalid_metadata", "The metadata breaks its limits (keys, lengths, scalar values)."
    INVALID_EVENT_TYPE = "invalid_event_type", "No such webhook event type."
    URL_INVALID = "url_invalid", "This URL cannot receive webhooks."
    LIMIT_REACHED = "limit_reached", "The merchant has as many of these objects as allowed."
    PLAN_INACTIVE = "plan_inactive", "The plan is deactivated and takes no new subscriptions."
    CHARGE_DISPUTED = "charge_disputed", "The payment has an open chargeback and cannot be refunded now."
    EVIDENCE_PAST_DUE = "evidence_past_due", "The chargeback's evidence deadline has passed."
    UNKNOWN_GATEWAY = "unknown_gateway", "No such payment gateway."
    GATEWAY_DISABLED = "gateway_disabled", "The payment gateway is not enabled in this deployment."
    CREDENTIALS_INVALID = "credentials_invalid", "The new gateway credentials could not be loaded."
    RULE_INVALID = "rule_invalid", "The fraud rule does not parse or names what does not exist; `column` says where."
    LIST_ITEM_INVALID = "list_item_invalid", "The value is not of the kind the fraud list holds (an email, an IP address, a country...)."
    LIST_ITEM_EXISTS = "list_item_exists", "The value is already on this fraud list."

    # Field validation: the serializer field's own code
    REQUIRED = "required", "The parameter is required."
    NULL = "null", "The parameter may not be null."
    BLANK = "blank", "The parameter may not be blank."
    INVALID = "invalid", "The parameter's value is not valid (wrong type or format)."
    INVALID_CHOICE = "invalid_choice", "The value is not one of the allowed values."
    MAX_LENGTH = "max_length", "The value is too long."
    MIN_LENGTH = "min_length", "The value is too short."
    MAX_VALUE = "max_value", "The number is too large."
    MIN_VALUE = "min_value", "The number is too small."
    NOT_A_LIST = "not_a_list", "The parameter must be a list."
    EMPTY = "empty", "The list may not be empty."
    NULL_CHARACTERS_NOT_ALLOWED = "null_characters_not_allowed", "The text contains a NUL character."
    SURROGATE_CHARACTERS_NOT_ALLOWED = "surrogate_characters_not_allowed", "The text contains a surrogate character."
    DATE = "date", "A date was given where a date-time is expected."
    DATETIME = "datetime", "A date-time was given where a date is expected."
    MAKE_AWARE = "make_aware", "The date-time does not exist in the time zone."
    OVERFLOW = "overflow", "The date-time is out of range."

    # Authentication and permissions
    AUTHENTICATION_REQUIRED = "authentication_required", "No credentials: send Authorization: Bearer <key or token>."
    INVALID_CREDENTIALS = "invalid_credentials", "The Authorization header is malformed, or its API key or staff token is not active."
    STAFF_TOKEN_EXPIRED = "staff_token_expired", "The staff token has expired: issue a new one from the back office's Staff tokens page."
    STAFF_TOKEN_REVOKED = "staff_token_revoked", "The staff token was revoked: issue a new one from the back office's Staff tokens page."
    PERMISSION_DENIED = "permission_denied", "The credentials do not allow this operation."
    RATE_LIMITED = "rate_limited", "Too many requests: retry after Retry-After seconds."

    # Idempotency
    IDEMPOTENCY_KEY_INVALID = "idempotency_key_invalid", "The Idempotency-Key header is empty, too long or not printable."
    IDEMPOTENCY_KEY_REUSED = "idempotency_key_reused", "The Idempotency-Key was used with different parameters."
    IDEMPOTENCY_KEY_IN_USE = "idempotency_key_in_use", "A request with this Idempotency-Key is still in progress."

    # Payments and gateways
    CARD_DECLINED = "card_declined", "The card was declined (decline_code says why; the failed payment is attached)."
    FRAUD_BLOCKED = "fraud_blocked", "Fraud screening blocked the payment; nothing was sent to a gateway (the failed payment is attached)."
    GATEWAY_UNAVAILABLE = "gateway_unavailable", "No payment gateway could take the request and nothing happened: retry later."
    GATEWAY_INVALID_REQUEST = "gateway_invalid_request", "The payment gateway refused the request."
    CURRENCY_NOT_SUPPORTED = "currency_not_supported", "The payment gateway does not take this currency."
    IDEMPOTENCY_ERROR = "idempotency_error", "The payment gateway refused a reused idempotency key."
    CHARGE_NOT_CAPTURABLE = "charge_not_capturable", "The payment gateway says the payment cannot be captured."
    CHARGE_NOT_VOIDABLE = "charge_not_voidable", "The payment gateway says the payment cannot be canceled."
    PAYMENT_INTENT_UNEXPECTED_STATE = "payment_intent_unexpected_state", "The payment gateway's payment is in a state that does not allow the operation."

    # The ledger
    INSUFFICIENT_FUNDS = "insufficient_funds", "The merchant's available balance does not cover the payout (nothing moved)."
    # Reconciliation
    INVALID_SETTLEMENT_FILE = "invalid_settlement_file", "The settlement report file is not in the gateway's format (the message names the line)."
    RECONCILIATION_IN_PROGRESS = "reconciliation_in_progress", "Another run is reconciling the same gateway and day."

    # Inbound gateway webhooks
    WEBHOOK_NOT_CONFIGURED = "webhook_not_configured", "The gateway's webhooks are not configured in this deployment."
    WEBHOOK_SIGNATURE_INVALID = "webhook_signature_invalid", "The webhook's signature is missing, wrong or too old."
    QUEUE_UNAVAILABLE = "queue_unavailable", "The event was stored but cannot be queued now: deliver it again later."
    WEBHOOK_PAYLOAD_INVALID = "webhook_payload_invalid", (
        "The event cannot be stored: it is nested too deeply, or its text holds a NUL or a lone surrogate."
    )

    # The server
    INTERNAL_ERROR = "internal_error", "An internal error occurred; it has been logged."
    DATABASE_UNAVAILABLE = "database_unavailable", "The database is briefly unavailable: retry with the same Idempotency-Key."


# A code FlowPay relays without defining it: a payment gateway's own error or decline code
# (Stripe's "parameter_invalid_integer", PayPal's issue names), returned as the gateway spelled it.
ForeignCode = NewType("ForeignCode", str)


def error_code_for(value: str) -> ErrorCode | ForeignCode:
    """The member spelled `value`, or `value` unchanged (a ForeignCode) when FlowPay defines no
    such code. For codes FlowPay passes on (a gateway's, a serializer field's): the API never
    rewrites what it relays."""
    try:
        return ErrorCode(value)
    except ValueError:
        return ForeignCode(value)


class FlowPayError(Exception):
    http_status = 400
    error_type = "invalid_request_error"
    code: ErrorCode | ForeignCode = ErrorCode.INVALID_REQUEST

    def __init__(self, message: str, *, code: ErrorCode | ForeignCode | None = None, param: str | None = None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.param = param

    def extra(self) -> dict:
        """Additional members of the error object (e.g. the declined transaction)."""
        return {}


class InvalidRequest(FlowPayError):
    pass


class NotFound(FlowPayError):
    http_status = 404
    code = ErrorCode.RESOURCE_MISSING


class InvalidState(FlowPayError):
    """The object's state machine does not allow the requested operation."""

    http_status = 409
    code = ErrorCode.INVALID_STATE


class AmountTooLarge(FlowPayError):
    code = ErrorCode.AMOUNT_TOO_LARGE


class InsufficientFunds(FlowPayError):
    """A posting would take an account below what its no-overdraft rule allows (a payout
    larger than the available balance): refused, nothing written."""

    code = ErrorCode.INSUFFICIENT_FUNDS


class UnsupportedMediaType(FlowPayError):
    """A charset or Content-Encoding the API does not read (core.api.parsers)."""

    http_status = 415
    code = ErrorCode.UNSUPPORTED_MEDIA_TYPE


class PermissionDenied(FlowPayError):
    http_status = 403
    error_type = "permission_error"
    code = ErrorCode.PERMISSION_DENIED


class IdempotencyError(FlowPayError):
    http_status = 422
    error_type = "idempotency_error"
    code = ErrorCode.IDEMPOTENCY_KEY_REUSED


class IdempotencyInFlight(FlowPayError):
    http_status = 409
    error_type = "idempotency_error"
    code = ErrorCode.IDEMPOTENCY_KEY_IN_USE


class CardDeclined(FlowPayError):
    """A final decline: the failed transaction is recorded and returned with the error."""

    http_status = 402
    error_type = "card_error"
    code = ErrorCode.CARD_DECLINED

    def __init__(self, message: str, *, decline_code: str | None, transaction_payload: dict | None = None):
        super().__init__(message, param="payment_method")
        self.decline_code = decline_code
        self.transaction_payload = transaction_payload

    def extra(self) -> dict:
        extra = {"decline_code": self.decline_code}
        if self.transaction_payload is not None:
            extra["transaction"] = self.transaction_payload
        return extra


class FraudBlocked(CardDeclined):
    """Screening blocked the payment before any gateway call: the failed transaction (its
    `failure_code` is fraud_blocked, its `risk` says why) is returned with the error."""

    code = ErrorCode.FRAUD_BLOCKED


class GatewayUnavailable(FlowPayError):
    """The gateway could not be reached and nothing happened there: safe to retry."""

    http_status = 503
    error_type = "api_error"
    code = ErrorCode.GATEWAY_UNAVAILABLE
