"""Fraud screening: signals, velocity counters, the rules language, lists, the risk score,
decisions (fraud.screening, below payments, which calls it before any gateway call) and
the review queue's decisions (fraud.reviews, above refunds: they capture, cancel or refund
through the payment and refund services). docs/architecture.md#fraud-screening."""
