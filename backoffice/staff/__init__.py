"""Staff sign-in pages of the back office (the admin site's login, enrolment, personal staff
tokens) and the middleware that keeps every admin and dashboard page behind the second factor.
The rules they apply are accounts.services.signin, .mfa, .lockout and .credentials."""
