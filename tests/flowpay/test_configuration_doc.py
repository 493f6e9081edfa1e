"""docs/configuration.md and the settings package agree: every setting declared in
flowpay/settings/ (once, in one module) is documented with the environment variables it
reads and their defaults, and everything the page names exists.

The settings are read from the source (ast), so a default is checked as written, whatever
the environment of the test run."""

import ast
import functools
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(settings.BASE_DIR)  # the repository, wherever this module sits under tests/
SETTINGS_DIR = ROOT / "flowpay" / "settings"
DOC = ROOT / "docs" / "configuration.md"
CODE_SPAN = re.compile(r"`([^`]*)`")
# Defaults computed from other settings (RUN_DIR, REDIS_URL, DEBUG): the page describes them in words.
COMPUTED_DEFAULTS = {"FLOWPAY_RUN_DIR", "DATABASE_URL", "CACHE_URL", "CELERY_BROKER_URL", "FLOWPAY_WEBHOOKS_ALLOW_PRIVATE_URLS",
                     "FLOWPAY_EXPORT_DIR"}


# --- the settings package, from its source ------------------------------------------------
@dataclass(frozen=True)
class EnvRead:
    setting: str
    variable: str
    default: ast.expr | None
    module: str


def _modules() -> dict[str, ast.Module]:
    return {path.stem: ast.parse(path.read_text()) for path in sorted(SETTINGS_DIR.glob("*.py")) if path.stem != "__init__"}


def _assigned_name(target: ast.expr) -> str | None:
    while isinstance(target, ast.Subscript):  # DATABASES["default"]["CONN_MAX_AGE"] = ...
        target = target.value
    return target.id if isinstance(target, ast.Name) and target.id.isupper() else None


def _assignments(tree: ast.Module):
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                yield _assigned_name(target), node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            yield _assigned_name(node.target), node.value


def _env_calls(node: ast.AST):
    """env("X", ...) and env.<type>("X", ...) calls under `node`."""
    for call in ast.walk(node):
        if not isinstance(call, ast.Call) or not call.args or not isinstance(call.args[0], ast.Constant):
            continue
        func = call.func
        if (isinstance(func, ast.Name) and func.id == "env") or (
            isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "env"
        ):
            default = next((k.value for k in call.keywords if k.arg == "default"), None)
            yield call, call.args[0].value, default


def declared_settings() -> dict[str, set[str]]:
    """Setting name -> the modules that assign it."""
    declared: dict[str, set[str]] = {}
    for module, tree in _modules().items():
        for name, _ in _assignments(tree):
            if name:
                declared.setdefault(name, set()).add(module)
    return declared


def env_reads() -> list[EnvRead]:
    reads = []
    for module, tree in _modules().items():
        seen = set()
        for name, value in _assignments(tree):
            for call, variable, default in _env_calls(value):
                assert name, f"{module}.py reads {variable} into something that is not an UPPERCASE setting"
                seen.add(id(call))
                reads.append(EnvRead(name, variable, default, module))
        stray = [variable for call, variable, _ in _env_calls(tree) if id(call) not in seen]
        assert not stray, f"{module}.py reads {stray} outside a setting's declaration"
    return reads


def _literal(node: ast.expr | None):
    """The value of a default written as a literal (numbers, strings, lists, 12 * 3600), else None."""
    if node is None:
        return None
    try:
        return ast.literal_eval(node)
    except ValueError:
        pass
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Mult, ast.Add, ast.Sub)):
        left, right = _literal(node.left), _literal(node.right)
        if isinstance(left, (int, float)) and isinstance(right, (int, float)):
            return {ast.Mult: left * right, ast.Add: left + right, ast.Sub: left - right}[type(node.op)]
    return None


def _as_documented(value) -> str:
    """How the page writes a default: as the environment variable would be set."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value) if value else "empty"
    if value == "":
        return "empty"
    return str(value)


# --- the page --------------------------------------------------------------------------------
@dataclass(frozen=True)
class DocRow:
    setting: str
    variables: tuple[str, ...]
    default: str  # the first code span of the cell, or "empty"


def _tables(text: str):
    """(header cells, body rows as cell lists) of each Markdown table."""
    table: list[list[str]] = []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            table.append([cell.strip() for cell in line.strip().strip("|").split("|")])
        elif table:
            yield table[0], table[2:]
            table = []


def doc_rows() -> list[DocRow]:
    rows = []
    for header, body in _tables(DOC.read_text()):
        if header[:3] != ["Setting", "Environment variable", "Default"]:
            continue
        for cells in body:
            names = CODE_SPAN.findall(cells[0])
            assert len(names) == 1, f"a settings row names one setting: {cells[0]!r}"
            variables = tuple(CODE_SPAN.findall(cells[1])) if cells[1] != "—" else ()
            spans = CODE_SPAN.findall(cells[2])
            default = "empty" if cells[2].startswith("empty") else (spans[0] if spans else cells[2])
            rows.append(DocRow(names[0], variables, default))
    return rows


def other_variables() -> list[str]:
    """Environment variables the page lists outside the settings tables."""
    names = []
    for header, body in _tables(DOC.read_text()):
        if header[:1] == ["Environment variable"]:
            names += [CODE_SPAN.findall(cells[0])[0] for cells in body]
    return names


# --- the checks --------------------------------------------------------------------------------
def test_each_setting_is_declared_in_one_module():
    twice = {name: sorted(modules) for name, modules in declared_settings().items() if len(modules) > 1}
    assert not twice, f"declared in several settings modules: {twice}"


def test_every_declared_setting_is_documented():
    documented = {row.setting for row in doc_rows()}
    missing = sorted(set(declared_settings()) - documented)
    assert not missing, f"settings missing from docs/configuration.md: {missing}"


def test_every_flowpay_setting_is_documented():
    documented = {row.setting for row in doc_rows()}
    flowpay = {name for name in dir(settings) if name.startswith("FLOWPAY_")}
    assert flowpay, "no FLOWPAY_* setting loaded"
    assert not sorted(flowpay - documented), f"FLOWPAY_* settings missing from docs/configuration.md: {sorted(flowpay - documented)}"


def test_every_documented_setting_exists():
    declared = declared_settings()
    for row in doc_rows():
        assert row.setting in declared, f"docs/configuration.md lists {row.setting}, which flowpay/settings/ does not declare"
        assert hasattr(settings, row.setting), f"docs/configuration.md lists {row.setting}, absent from django.conf.settings"


def test_each_environment_variable_is_documented_with_the_setting_it_sets():
    read = {(r.setting, r.variable) for r in env_reads()}
    documented = {(row.setting, variable) for row in doc_rows() for variable in row.variables}
    assert not sorted(read - documented), f"environment variables missing from docs/configuration.md: {sorted(read - documented)}"
    assert not sorted(documented - read), f"docs/configuration.md names variables the settings do not read: {sorted(documented - read)}"


def test_documented_defaults_are_the_declared_ones():
    rows = {(row.setting, variable): row for row in doc_rows() for variable in row.variables}
    computed = set()
    for read in env_reads():
        value = _literal(read.default)
        if value is None:
            computed.add(read.variable)
            continue
        row = rows[(read.setting, read.variable)]
        expected = _as_documented(value)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            assert float(row.default) == value, f"{read.variable}: documented default {row.default}, declared {value}"
        else:
            assert row.default == expected, f"{read.variable}: documented default {row.default!r}, declared {expected!r}"
    assert computed == COMPUTED_DEFAULTS, "a default that is not a literal is described in words: list it in COMPUTED_DEFAULTS"


@functools.cache
def _sources() -> str:
    """The code and scripts that may read environment variables (not the tests, not the docs)."""
    skip = {".venv", ".run", ".git", "tests", "docs", "staticfiles", "templates"}
    paths = [p for p in ROOT.iterdir() if p.is_file()] + [
        p for top in ROOT.iterdir() if top.is_dir() and top.name not in skip for p in top.rglob("*") if p.is_file()
    ]
    return "\n".join(p.read_text(errors="replace") for p in paths if p.suffix in {".py", ".sh", ".yaml", ".conf"} or p.name == "Makefile")


@pytest.mark.parametrize("variable", other_variables())
def test_other_documented_variables_are_read_somewhere(variable):
    assert variable in _sources(), f"docs/configuration.md lists {variable}, which nothing reads"
