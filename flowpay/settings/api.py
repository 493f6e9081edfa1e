"""The merchant REST API: DRF, camelCase JSON, OpenAPI, rate limits, idempotency, API keys."""

from datetime import timedelta

from flowpay.settings.base import env

# Requests per API key or staff token, in DRF rate syntax (100/s, 6000/min).
FLOWPAY_API_RATE_LIMIT = env.str("FLOWPAY_API_RATE_LIMIT", default="6000/min")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["accounts.authentication.BearerTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["djangorestframework_camel_case.render.CamelCaseJSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["core.api.parsers.StrictCamelCaseJSONParser"],
    "EXCEPTION_HANDLER": "core.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_THROTTLE_CLASSES": ["core.api.throttling.ApiKeyRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"api_key": FLOWPAY_API_RATE_LIMIT},
}
JSON_CAMEL_CASE = {
    # Merchant metadata is returned exactly as sent: its keys are never re-cased.
    "JSON_UNDERSCOREIZE": {"no_underscore_before_number": True, "ignore_fields": ("metadata",)},
}
SPECTACULAR_SETTINGS = {
    "TITLE": "FlowPay API",
    "DESCRIPTION": "Merchant payments API. Amounts are integers in minor units of the currency.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "CAMELIZE_NAMES": False,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.contrib.djangorestframework_camel_case.camelize_serializer_fields",
        "drf_spectacular.hooks.postprocess_schema_enums",
    ],
    "APPEND_COMPONENTS": {
        "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
    },
    "SECURITY": [{"bearerAuth": []}],
    # Choice sets several fraud fields share (a rule's action and a decision; rule modes).
    "ENUM_NAME_OVERRIDES": {
        "FraudActionEnum": "fraud.models.ACTIONS",
        "FraudRuleModeEnum": "fraud.models.RULE_MODE_CHOICES",
        "FraudEvaluatedModeEnum": "fraud.models.EVALUATED_MODE_CHOICES",
    },
}

# Idempotency keys are kept at least this long, then purged by beat.
FLOWPAY_IDEMPOTENCY_TTL = timedelta(hours=env.int("FLOWPAY_IDEMPOTENCY_TTL_HOURS", default=24))
# An in-flight idempotent request older than this is presumed dead and may be taken over.
FLOWPAY_IDEMPOTENCY_LOCK_TIMEOUT = timedelta(seconds=env.int("FLOWPAY_IDEMPOTENCY_LOCK_SECONDS", default=120))
# Environment of the API keys this deployment issues: test or live (seed_demo refuses live).
FLOWPAY_API_KEY_ENVIRONMENT = env.str("FLOWPAY_API_KEY_ENVIRONMENT", default="test")
