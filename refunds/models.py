# Refunds and chargebacks arrive with the refunds issue (#4).
