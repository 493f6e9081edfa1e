# Plans, subscriptions, invoices and rebill jobs arrive with the subscriptions issue (#5).
