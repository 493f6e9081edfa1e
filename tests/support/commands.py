"""Running management commands the way the runbook does (`python manage.py <name>`), for
the tests of the runbook commands of every app.

`run` returns what a command printed (`expect` is its exit status), `run_json` its one
JSON document. A pytest plugin (tests/conftest.py loads it): `simulator_only` makes the
simulator the one enabled gateway (request it with `pytest.mark.usefixtures`),
`gateway_env` gives a test a clean credentials environment.
"""

import json
from dataclasses import dataclass
from io import StringIO

import pytest
from django.core.management import call_command

from gateways.credentials import credentials_reload
from gateways.simulator.adapter import simulator_faults_clear

CREDENTIAL_VARIABLES = [
    "STRIPE_API_KEY", "STRIPE_API_BASE", "STRIPE_WEBHOOK_SECRET", "STRIPE_API_KEY_CREATED_AT", "PAYPAL_CLIENT_ID",
    "PAYPAL_CLIENT_SECRET", "PAYPAL_API_BASE", "PAYPAL_WEBHOOK_ID", "PAYPAL_CLIENT_SECRET_CREATED_AT", "FLOWPAY_SECRETS_FILE",
]


@dataclass
class Outcome:
    code: int
    out: str
    err: str

    @property
    def json(self):
        return json.loads(self.out)


def run(*args, expect: int = 0) -> Outcome:
    """Run a command; `expect` is its exit status (0: returns normally, else SystemExit)."""
    out, err = StringIO(), StringIO()
    if expect == 0:
        call_command(*args, stdout=out, stderr=err)
    else:
        with pytest.raises(SystemExit) as exited:
            call_command(*args, stdout=out, stderr=err)
        assert exited.value.code == expect, out.getvalue() + err.getvalue()
    return Outcome(expect, out.getvalue(), err.getvalue())


def run_json(*args, expect: int = 0) -> dict:
    outcome = run(*args, "--format", "json", expect=expect)
    document = outcome.json  # exactly one JSON document on stdout
    assert document["ok"] is (expect == 0)
    return document


@pytest.fixture
def simulator_only(settings):
    """The simulator is the one enabled gateway (and the primary) unless a test says otherwise."""
    settings.FLOWPAY_GATEWAYS = ["simulator"]
    yield
    simulator_faults_clear()


@pytest.fixture
def gateway_env():
    """A clean credentials environment for one test (no keys, no secrets file), reloaded
    into the process; the real environment's credentials are reloaded afterwards."""
    with pytest.MonkeyPatch.context() as patch:
        for name in CREDENTIAL_VARIABLES:
            patch.delenv(name, raising=False)
        credentials_reload()
        yield patch
    credentials_reload()
