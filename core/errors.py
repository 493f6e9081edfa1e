"""Domain exceptions. Services raise these; one API exception handler renders them all in
the error shape {"error": {"type", "code", "message", "param"}}."""


class FlowPayError(Exception):
    http_status = 400
    error_type = "invalid_request_error"
    code = "invalid_request"

    def __init__(self, message: str, *, code: str | None = None, param: str | None = None):
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
    code = "resource_missing"


class InvalidState(FlowPayError):
    """The object's state machine does not allow the requested operation."""

    http_status = 409
    code = "invalid_state"


class AmountTooLarge(FlowPayError):
    code = "amount_too_large"


class PermissionDenied(FlowPayError):
    http_status = 403
    error_type = "permission_error"
    code = "permission_denied"


class IdempotencyError(FlowPayError):
    http_status = 422
    error_type = "idempotency_error"
    code = "idempotency_key_reused"


class IdempotencyInFlight(FlowPayError):
    http_status = 409
    error_type = "idempotency_error"
    code = "idempotency_key_in_use"


class CardDeclined(FlowPayError):
    """A final decline: the failed transaction is recorded and returned with the error."""

    http_status = 402
    error_type = "card_error"
    code = "card_declined"

    def __init__(self, message: str, *, decline_code: str | None, transaction_payload: dict | None = None):
        super().__init__(message, param="payment_method")
        self.decline_code = decline_code
        self.transaction_payload = transaction_payload

    def extra(self) -> dict:
        extra = {"decline_code": self.decline_code}
        if self.transaction_payload is not None:
            extra["transaction"] = self.transaction_payload
        return extra


class GatewayUnavailable(FlowPayError):
    """The gateway could not be reached and nothing happened there: safe to retry."""

    http_status = 503
    error_type = "api_error"
    code = "gateway_unavailable"
