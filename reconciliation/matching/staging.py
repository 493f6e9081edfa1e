"""The gateway's rows in PostgreSQL, for one run: the temporary relation `recon_g` that the
matcher reads (reconciliation.matching.engine), filled by COPY so that no day is ever held in
Python's memory.

- From a gateway's API: the records are spooled, as they arrive, to a temporary file in COPY's
  CSV form (`spool_records`, before any database transaction), then copied into the table
  `recon_api`, which the view `recon_g` shows (`load_spool`). A gateway that fails while
  being read leaves nothing behind.
- From a file in the gateway's own format (SettlementFileFormat): the file's bytes are copied
  as they are into `recon_raw` (one text column per CSV column, line numbers kept) and
  `recon_g` is a view translating them (major units to minor with the currency's exponent,
  the gateway's categories to kinds); a value it cannot translate stops the matcher's query,
  and a validation pass then names the first bad line.
Either way recon_g has the column `raw_tid`, the tuple id of the row it shows, by which the
matcher reads again the few rows it keeps (a TID scan, not a pass over the day).

Temporary relations live in the run's database transaction and are dropped before it ends.
"""

from __future__ import annotations

import csv
import io
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from typing import BinaryIO, NoReturn

from psycopg import errors as pg_errors

from core.errors import ErrorCode, FlowPayError
from core.money import CURRENCY_EXPONENTS
from gateways.base import SettlementFileFormat, SettlementKind, SettlementRecord, SettlementStatus

SPOOL_MEMORY_BYTES = 8 * 1024 * 1024  # then the spool is a file on disk
COPY_CHUNK_BYTES = 1024 * 1024
WORK_MEM = "128MB"  # per sort or hash of the run's statements (twice that for a hash: hash_mem_multiplier)
RECORD_COLUMNS = ["key", "reference", "parent_reference", "kind", "amount", "fee", "currency", "created", "status",
                  "flowpay_reference", "idempotency_key", "balance_affecting"]
TEMP_RELATIONS = ["recon_found", "recon_context", "recon_lonly", "recon_jx", "recon_g", "recon_api", "recon_raw", "recon_exponents"]


class InvalidSettlementFile(FlowPayError):
    """The file is not a report in the gateway's format: nothing was imported."""

    code = ErrorCode.INVALID_SETTLEMENT_FILE


@dataclass(frozen=True)
class Spool:
    file: BinaryIO
    rows: int


# --- from a gateway's API ---------------------------------------------------------------
def spool_records(records: Iterable[SettlementRecord]) -> Spool:
    """The records written to a temporary file in COPY's CSV form (NULL unquoted, text quoted)."""
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES, mode="w+b")
    text = io.TextIOWrapper(spool, encoding="utf-8", newline="", write_through=True)
    writer = csv.writer(text, quoting=csv.QUOTE_NONNUMERIC, lineterminator="\n")
    rows = 0
    for r in records:
        writer.writerow([r.key, r.reference, r.parent_reference, str(r.kind), r.amount, r.fee, r.currency,
                         r.created.isoformat(), str(r.status), r.flowpay_reference, r.idempotency_key,
                         "t" if r.balance_affecting else "f"])
        rows += 1
    text.flush()
    text.detach()
    spool.seek(0)
    return Spool(file=spool, rows=rows)


def create_temp_relations(cursor) -> None:
    drop_temp_relations(cursor)
    # A time without an offset in a report file is UTC.
    cursor.execute("SET LOCAL TIME ZONE 'UTC'")
    # For the run's transaction: the reference join hashes FlowPay's day (a million records
    # are about 150 MB) in memory rather than in batches on disk, and its statements are
    # planned for one execution each, which JIT compilation would only delay (by seconds).
    cursor.execute(f"SET LOCAL work_mem = '{WORK_MEM}'")
    cursor.execute("SET LOCAL jit = off")
    cursor.execute("CREATE TEMP TABLE recon_exponents (code text PRIMARY KEY, exponent int NOT NULL, factor numeric NOT NULL)")
    codes, exponents = zip(*sorted(CURRENCY_EXPONENTS.items()), strict=True)
    cursor.execute("INSERT INTO recon_exponents SELECT code, exponent, 10::numeric ^ exponent "
                   "FROM unnest(%s::text[], %s::int[]) AS e(code, exponent)", [list(codes), list(exponents)])


def drop_temp_relations(cursor) -> None:
    """Drop this session's reconciliation relations (recon_g is a table or a view), views first."""
    cursor.execute("SELECT relname, relkind FROM pg_class WHERE relnamespace = pg_my_temp_schema() AND relname = ANY(%s)",
                   [TEMP_RELATIONS])
    found = cursor.fetchall()
    views = [name for name, kind in found if kind == "v"]
    tables = [name for name, kind in found if kind == "r"]
    if views:
        cursor.execute("DROP VIEW " + ", ".join(views))
    if tables:
        cursor.execute("DROP TABLE " + ", ".join(tables))


GATEWAY_ROWS_TABLE = """
CREATE TEMP TABLE recon_api (
    row_no bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key text NOT NULL UNIQUE CHECK (key <> ''), reference text NOT NULL, parent_reference text NOT NULL,
    kind text NOT NULL, amount bigint NOT NULL, fee bigint, currency text NOT NULL, created timestamptz NOT NULL,
    status text NOT NULL, flowpay_reference text NOT NULL, idempotency_key text NOT NULL, balance_affecting boolean NOT NULL
)"""


def load_spool(cursor, spool: Spool) -> int:
    cursor.execute(GATEWAY_ROWS_TABLE)
    columns = ", ".join(RECORD_COLUMNS)
    try:
        # A fee the gateway did not give is written "" (QUOTE_NONNUMERIC) and read as NULL.
        with cursor.cursor.copy(f"COPY recon_api ({columns}) FROM STDIN WITH (FORMAT csv, FORCE_NULL (fee))") as copy:
            while chunk := spool.file.read(COPY_CHUNK_BYTES):
                copy.write(chunk)
    except pg_errors.UniqueViolation as exc:
        raise FlowPayError(f"The gateway listed one settlement row twice ({exc.diag.message_detail}).",
                           code=ErrorCode.GATEWAY_INVALID_REQUEST) from None
    cursor.execute("ANALYZE recon_api")
    cursor.execute("CREATE TEMP VIEW recon_g AS SELECT ctid AS raw_tid, * FROM recon_api")
    return spool.rows


# --- from a file ------------------------------------------------------------------------
def _quoted(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _first_non_empty(columns: Iterable[str], positions: dict[str, str]) -> str:
    present = [f"nullif(r.{positions[c]}, '')" for c in columns if c in positions]
    return f"coalesce({', '.join(present)}, '')" if present else "''"


def _case(column_sql: str, mapping: dict[str, str], default: str) -> str:
    whens = " ".join(f"WHEN {_quoted(k)} THEN {_quoted(v)}" for k, v in mapping.items())
    return f"(CASE {column_sql} {whens} ELSE {_quoted(default)} END)" if whens else _quoted(default)


def _minor(column_sql: str, fmt: SettlementFileFormat, *, required: bool) -> str:
    """Integer minor units of a column. Major units written with exactly the currency's
    decimals ("19.99" USD, "1999" JPY) are read as text (fast); anything else is scaled as a
    number, and a value finer than the minor unit fails the cast (naming itself) rather than
    being rounded. An empty value is NULL, or an error when `required`."""
    c = column_sql
    empty = f"({c} || 'is not an amount')::bigint" if required else "NULL::bigint"
    if not fmt.major_units:
        return f"(CASE WHEN {c} <> '' THEN {c}::bigint ELSE {empty} END)"
    scaled = f"({c}::numeric * e.factor)"
    return (f"(CASE WHEN coalesce({c}, '') = '' THEN {empty} "
            f"WHEN e.exponent > 0 AND strpos({c}, '.') = length({c}) - e.exponent THEN replace({c}, '.', '')::bigint "
            f"WHEN e.exponent = 0 AND strpos({c}, '.') = 0 THEN {c}::bigint "
            f"WHEN {scaled} = trunc({scaled}) THEN {scaled}::bigint "
            f"ELSE ({c} || ' is finer than its minor unit')::bigint END)")


def _kind(column_sql: str, kinds: dict[str, str]) -> str:
    """The kind of a row from the gateway's category: one hashed IN when the gateway's names
    are FlowPay's (Stripe's reporting categories), else a CASE.

    Comparisons of a million raw values are made in the "C" collation (byte equality, the
    same answer as any deterministic collation's without looking the locale up per call);
    the values themselves keep the database's collation, for the orderings made of them."""
    if all(k == v for k, v in kinds.items()):
        names = ", ".join(_quoted(k) for k in kinds)
        return f"(CASE WHEN {column_sql} COLLATE \"C\" IN ({names}) THEN {column_sql} ELSE {_quoted(str(SettlementKind.OTHER))} END)"
    return _case(column_sql, kinds, str(SettlementKind.OTHER))


NUMBER = r"^-?[0-9]+(\.[0-9]+)?$"
INTEGER = r"^-?[0-9]+$"
TIMESTAMP = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?( ?(Z|[+-][0-9]{2}(:?[0-9]{2})?))?$"


@dataclass(frozen=True)
class LoadedFile:
    fmt: SettlementFileFormat
    positions: dict[str, str]  # the header's column -> its recon_raw column
    name: str
    rows: int  # the file's data lines


def load_file(cursor, stream: BinaryIO, fmt: SettlementFileFormat, *, name: str) -> LoadedFile:
    """Copy the report `stream` into recon_raw as it is and define the view recon_g over it.
    The values are translated as the matcher reads them (a million rows are never written
    twice); a bad one makes the matcher's query fail, and `explain_bad_file` then names it.
    Raises InvalidSettlementFile for a file COPY cannot read (naming the line)."""
    header = _header(stream, fmt, name=name)
    positions = {column: f"c{i}" for i, column in enumerate(header, start=1) if column}
    columns = ", ".join(f"c{i} text" for i in range(1, len(header) + 1))
    cursor.execute(f"CREATE TEMP TABLE recon_raw (line bigint GENERATED ALWAYS AS IDENTITY (START WITH 2), {columns})")
    targets = ", ".join(f"c{i}" for i in range(1, len(header) + 1))
    try:
        with cursor.cursor.copy(f"COPY recon_raw ({targets}) FROM STDIN WITH (FORMAT csv)") as copy:
            while chunk := stream.read(COPY_CHUNK_BYTES):
                copy.write(chunk)
    except (pg_errors.BadCopyFileFormat, pg_errors.CharacterNotInRepertoire, pg_errors.UntranslatableCharacter) as exc:
        raise InvalidSettlementFile(f"{name} is not a {fmt.name} file: {_copy_error(exc, header)}.") from None
    rows = cursor.cursor.rowcount
    # Not analyzed: the planner takes its size from its pages, and the matcher's plans need no
    # more (its values are read through the view, whose columns have no statistics anyway).
    cursor.execute(f"CREATE TEMP VIEW recon_g AS {_translation(fmt, positions)}")
    return LoadedFile(fmt=fmt, positions=positions, name=name, rows=rows)


def explain_bad_file(cursor, loaded: LoadedFile, error: Exception) -> NoReturn:
    """A query over recon_g failed on a value of the file (the caller rolled back to before
    it): search the file, value by value, for the first bad line and raise naming it."""
    _validate(cursor, loaded.fmt, loaded.positions, name=loaded.name)
    raise InvalidSettlementFile(f"{loaded.name} is not a {loaded.fmt.name} file: {str(error).splitlines()[0]}.")


def _copy_error(exc, header: list[str]) -> str:
    """COPY's complaint in the file's terms: its line (COPY counts from the first data line)
    and its column names."""
    message = re.sub(r'column "c(\d+)"', lambda m: f'column "{header[int(m.group(1)) - 1]}"', exc.diag.message_primary or "")
    found = re.search(r"line (\d+)", exc.diag.context or "")
    return f"line {int(found.group(1)) + 1}: {message}" if found else message


def _header(stream: BinaryIO, fmt: SettlementFileFormat, *, name: str) -> list[str]:
    first = stream.readline()
    try:
        line = first.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidSettlementFile(f"{name} is not UTF-8 text.") from None
    header = next(csv.reader([line]), [])
    header = [column.strip() for column in header]
    missing = sorted(fmt.required_columns - set(header))
    if not header or missing:
        raise InvalidSettlementFile(
            f"{name} is not a {fmt.name} file: its header lacks {', '.join(missing) or 'every column'}.")
    if len(set(filter(None, header))) != len(list(filter(None, header))):
        raise InvalidSettlementFile(f"{name} names a column twice in its header.")
    return header


def _translation(fmt: SettlementFileFormat, positions: dict[str, str]) -> str:
    """SELECT translating recon_raw's text into recon_g's columns (the line and the tuple id, then RECORD_COLUMNS' order)."""
    col = {name: f"r.{pos}" for name, pos in positions.items()}
    kinds = {k: str(v) for k, v in fmt.kinds.items()}
    raw_kind = col[fmt.kind]
    kind = _kind(raw_kind, kinds)
    default_refs = fmt.references.get(None, ())
    whens = []
    for target, columns in fmt.references.items():
        names = [k for k, v in kinds.items() if target is not None and v == str(target)]
        if names:
            whens.append(f"WHEN {raw_kind} COLLATE \"C\" IN ({', '.join(_quoted(n) for n in names)}) "
                         f"THEN {_first_non_empty(columns, positions)}")
    reference = f"(CASE {' '.join(whens)} ELSE {_first_non_empty(default_refs, positions)} END)" if whens \
        else _first_non_empty(default_refs, positions)
    key = col[fmt.key[0]] if len(fmt.key) == 1 else "concat_ws(':', " + ", ".join(col[c] for c in fmt.key) + ")"
    reference = f"coalesce(nullif({reference}, ''), {key})"  # a row without a reference is known by its key
    created = col[fmt.created]
    # ISO 8601 only: a day-first or month-first date would be read silently by DateStyle.
    timestamp = (f"(CASE WHEN substr({created}, 5, 1) = '-' THEN {created} "
                 f"ELSE {created} || ' is not an ISO 8601 time' END)::timestamptz")
    status = _case(col[fmt.status], {k: str(v) for k, v in fmt.statuses.items()}, str(SettlementStatus.SUCCEEDED)) \
        if fmt.status in col else _quoted(str(SettlementStatus.SUCCEEDED))
    fee = _minor(col[fmt.fee], fmt, required=False) if fmt.fee in col else "NULL::bigint"
    if fmt.fee in col and fmt.fee_sign != 1:
        fee = f"({fmt.fee_sign} * {fee})"
    affecting = f"(upper(coalesce({col[fmt.balance_affecting]}, 'Y')) <> 'N')" if fmt.balance_affecting in col else "true"
    # Values that cannot be translated fail the cast of a text naming them: the query stops
    # there (a key missing, a currency unknown), and explain_bad_file names the line.
    key = f"(CASE WHEN {key} <> '' THEN {key} ELSE (coalesce({key}, '') || 'has no key')::bigint::text END)"
    currency = (f"(CASE WHEN e.code IS NOT NULL THEN e.code "
                f"ELSE ({col[fmt.currency]} || ' is not a currency')::bigint::text END)")
    return f"""
        SELECT r.line AS row_no, r.ctid AS raw_tid, {key} AS key, {reference} AS reference,
               {_first_non_empty(fmt.parent_reference, positions)} AS parent_reference, {kind} AS kind,
               {_minor(col[fmt.amount], fmt, required=True)} AS amount, {fee} AS fee, {currency} AS currency, {timestamp} AS created,
               {status} AS status, {_first_non_empty(fmt.flowpay_reference, positions)} AS flowpay_reference,
               {_first_non_empty(fmt.idempotency_key, positions)} AS idempotency_key, {affecting} AS balance_affecting
        FROM recon_raw r LEFT JOIN recon_exponents e ON e.code = upper({col[fmt.currency]} COLLATE "C")"""


def _validate(cursor, fmt: SettlementFileFormat, positions: dict[str, str], *, name: str) -> None:
    """One pass over the raw rows naming the first line of each kind of bad value."""
    col = {c: f"r.{p}" for c, p in positions.items()}
    amount_pattern = NUMBER if fmt.major_units else INTEGER
    money = [(fmt.amount, True)] + ([(fmt.fee, False)] if fmt.fee in col else [])
    checks = [
        (f"concat_ws('', {', '.join(col[c] for c in fmt.key)}) = ''", "has no row key"),
        ("e.code IS NULL", f"has an unknown currency in column {fmt.currency}"),
        (f"coalesce({col[fmt.created]}, '') !~ {_quoted(TIMESTAMP)}", f"has an unreadable time in column {fmt.created}"),
    ]
    for column, required in money:
        value = col[column]
        empty_ok = "" if required else f"coalesce({value}, '') <> '' AND "
        checks.append((f"{empty_ok}coalesce({value}, '') !~ {_quoted(amount_pattern)}",
                       f"has an unreadable amount in column {column}"))
        if fmt.major_units:
            checks.append((
                f"e.code IS NOT NULL AND coalesce({value}, '') ~ {_quoted(NUMBER)} AND "
                f"{value}::numeric * e.factor <> trunc({value}::numeric * e.factor)",
                f"has an amount in column {column} finer than its currency's minor unit",
            ))
    selects = ", ".join(f"min(r.line) FILTER (WHERE {condition})" for condition, _ in checks)
    cursor.execute(f"SELECT {selects} FROM recon_raw r LEFT JOIN recon_exponents e ON e.code = upper({col[fmt.currency]})")
    found = cursor.fetchone()
    bad = sorted((line, message) for line, (_, message) in zip(found, checks, strict=True) if line is not None)
    if bad:
        line, message = bad[0]
        raise InvalidSettlementFile(f"{name}: line {line} {message}.")
