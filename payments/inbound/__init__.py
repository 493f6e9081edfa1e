"""Inbound gateway webhooks: POST /webhooks/stripe and POST /webhooks/paypal."""
