"""The audit vocabulary: every action is an AuditAction member, and nothing else is recorded."""

import ast
import re
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from audit.actions import AuditAction
from audit.models import AuditEntry
from audit.services import audit_record
from backoffice.ops.services import SWITCH_AUDIT_ACTIONS
from core import runtime
from core.actors import Actor

ROOT = Path(django_settings.BASE_DIR)  # the repository, wherever this module sits under tests/
DOTTED_LOWERCASE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")


def production_modules():
    for path in sorted(ROOT.glob("*/**/*.py")):
        parts = path.relative_to(ROOT).parts
        if parts[0] in ("tests", "docker", "scripts") or parts[0].startswith(".") or "migrations" in parts:
            continue
        yield path


@pytest.mark.parametrize("action", list(AuditAction), ids=str)
def test_every_action_is_a_dotted_lowercase_name_spelled_by_its_member(action):
    assert DOTTED_LOWERCASE.match(action.value), action.value
    assert action.name == action.value.upper().replace(".", "_")
    assert action == action.value and str(action) == action.value  # stored and compared as today's string
    assert len(action.value) <= AuditEntry._meta.get_field("action").max_length


@pytest.mark.django_db
@pytest.mark.parametrize("action", ["test.action", "refund.create", f"runtime.{runtime.PRIMARY_GATEWAY}"])
def test_audit_record_refuses_a_plain_string(action):
    # Unknown or spelling a member: a producer always names the member.
    with pytest.raises(TypeError, match="AuditAction"):
        audit_record(actor=Actor.system("test"), action=action)
    assert not AuditEntry.objects.exists()


@pytest.mark.django_db
def test_audit_record_stores_the_member_s_string():
    entry = audit_record(actor=Actor.system("test"), action=AuditAction.REFUND_CREATE)
    assert AuditEntry.objects.get(pk=entry.pk).action == "refund.create"
    assert type(entry.action) is str


def test_every_runtime_switch_has_its_action():
    keys = {runtime.PRIMARY_GATEWAY, runtime.FALLBACK_MODE, runtime.SIMPLIFIED_FLOW, runtime.CREDENTIALS_VERSION,
            runtime.DB_CONNECTIONS_VERSION}
    assert set(SWITCH_AUDIT_ACTIONS) == keys
    assert all(SWITCH_AUDIT_ACTIONS[key] == f"runtime.{key}" for key in keys)


def _spelled_action(node: ast.AST) -> bool:
    """A string literal, an f-string or a concatenation: an action not named by its member."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return True
    if isinstance(node, ast.JoinedStr):
        return True
    if isinstance(node, ast.BinOp):
        return _spelled_action(node.left) or _spelled_action(node.right)
    if isinstance(node, ast.IfExp):
        return _spelled_action(node.body) or _spelled_action(node.orelse)
    return False


def test_no_production_code_records_a_spelled_out_action():
    # The runtime check covers the paths tests run; this covers the others (rare failure branches).
    offenders = []
    for path in production_modules():
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
            if name == "audit_record":
                spelled = [kw.value for kw in node.keywords if kw.arg == "action" and _spelled_action(kw.value)]
            elif name == "audit_bulk" or (name == "append" and getattr(node.func.value, "id", "") == "audits"):
                spelled = [
                    element.elts[0] for element in ast.walk(node)
                    if isinstance(element, ast.Tuple) and element.elts and _spelled_action(element.elts[0])
                ]
            else:
                continue
            offenders += [f"{path.relative_to(ROOT)}:{node.lineno}" for _ in spelled]
    assert not offenders, f"pass an AuditAction member: {offenders}"
