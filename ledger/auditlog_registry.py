"""Field-level history (django-auditlog) of the ledger objects staff can edit in the admin:
the merchants' ledger settings (fee schedule, availability delay, payout schedule)."""

from auditlog.registry import auditlog

from ledger.models import MerchantLedgerSettings

auditlog.register(MerchantLedgerSettings)
