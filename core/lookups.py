"""Look-ups with their SQL built once: of one row by a unique key, for the two every API
request makes (its credential, its Idempotency-Key's record), and of rows by their ids
locked in id order, for the ledger accounts every captured payment locks. Building the
same query with the ORM on each call costs several times running it (bench/README.md).

Rule: the rows are model instances exactly as the ORM makes them: every concrete field's
column, the backend's and the fields' own database converters, Model.from_db, and, for a
`related` foreign key, its object cached on the instance as select_related does. Anything
else reads through the ORM.
"""

from __future__ import annotations

from typing import Generic, TypeVar

from django.db import connections
from django.db.models import Model

M = TypeVar("M", bound=Model)


class ModelColumns:
    """One model's columns in a SELECT (under a table alias) and how to turn them back into
    an instance."""

    def __init__(self, model: type[Model], alias: str, connection):
        quote = connection.ops.quote_name
        self.model, self.fields = model, list(model._meta.concrete_fields)
        self.sql = ", ".join(f"{alias}.{quote(field.column)}" for field in self.fields)
        self.attnames = [field.attname for field in self.fields]
        self.converters = []
        for field in self.fields:
            column = field.get_col(alias)
            self.converters.append((connection.ops.get_db_converters(column) + field.get_db_converters(connection), column))

    def instance(self, values, *, using: str) -> Model:
        converted = []
        for value, (converters, column) in zip(values, self.converters, strict=True):
            for converter in converters:
                value = converter(value, column, connections[using])
            converted.append(value)
        return self.model.from_db(using, self.attnames, converted)


class UniqueLookup(Generic[M]):
    """`model` WHERE each of the `by` fields equals the given value (together a unique key),
    or None; with `related`, the object of that non-null foreign key joined and cached."""

    def __init__(self, model: type[M], *, by: tuple[str, ...], related: str | None = None, using: str = "default"):
        self.model, self.by, self.related, self.using = model, by, related, using
        self._compiled = None

    def get(self, *values) -> M | None:
        if len(values) != len(self.by):
            raise TypeError(f"{self.model.__name__} is looked up by {', '.join(self.by)}")
        sql, main, related = self._compile()
        connection = connections[self.using]
        fields = [self.model._meta.get_field(name) for name in self.by]
        params = [field.get_db_prep_value(value, connection) for field, value in zip(fields, values, strict=True)]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            row = cursor.fetchone()
        if row is None:
            return None
        found = main.instance(row[:len(main.fields)], using=self.using)
        if related is not None:
            setattr(found, self.related, related.instance(row[len(main.fields):], using=self.using))
        return found

    def _compile(self):
        if self._compiled is None:
            connection = connections[self.using]
            quote = connection.ops.quote_name
            opts = self.model._meta
            main = ModelColumns(self.model, "t", connection)
            select, joins, related = main.sql, "", None
            if self.related is not None:
                foreign_key = opts.get_field(self.related)
                if not foreign_key.many_to_one or foreign_key.null:
                    raise ValueError(f"related must name a non-null foreign key of {self.model.__name__} (an inner join)")
                target = foreign_key.related_model
                related = ModelColumns(target, "r", connection)
                select += ", " + related.sql
                joins = (f" INNER JOIN {quote(target._meta.db_table)} r"
                         f" ON r.{quote(foreign_key.target_field.column)} = t.{quote(foreign_key.column)}")
            where = " AND ".join(f"t.{quote(opts.get_field(name).column)} = %s" for name in self.by)
            self._compiled = (f"SELECT {select} FROM {quote(opts.db_table)} t{joins} WHERE {where}", main, related)
        return self._compiled


class LockedRowsById(Generic[M]):
    """`model` rows WHERE id = ANY(ids), locked (FOR UPDATE) in ascending id order: two
    callers locking overlapping sets lock in the same order and never deadlock. Runs inside
    the caller's database transaction."""

    def __init__(self, model: type[M], *, using: str = "default"):
        self.model, self.using = model, using
        self._compiled = None

    def get(self, ids) -> list[M]:
        sql, columns = self._compile()
        with connections[self.using].cursor() as cursor:
            cursor.execute(sql, [sorted(ids)])
            return [columns.instance(row, using=self.using) for row in cursor.fetchall()]

    def _compile(self):
        if self._compiled is None:
            connection = connections[self.using]
            quote = connection.ops.quote_name
            opts = self.model._meta
            columns = ModelColumns(self.model, "t", connection)
            pk = quote(opts.pk.column)
            self._compiled = (f"SELECT {columns.sql} FROM {quote(opts.db_table)} t WHERE t.{pk} = ANY(%s) "
                              f"ORDER BY t.{pk} FOR UPDATE", columns)
        return self._compiled


def row_insert_sql(instance: Model, *, connection, alias: str | None = None) -> tuple[str, list]:
    """`INSERT INTO <table> [AS alias] (<its concrete columns but the primary key>) VALUES (…)`
    for `instance`, with its values prepared as the ORM prepares them for an insert
    (pre_save, get_db_prep_save): the start of a statement the ORM cannot express, such as
    INSERT … ON CONFLICT … RETURNING, to which the caller appends the rest."""
    opts = instance._meta
    fields = [f for f in opts.concrete_fields if not f.primary_key]
    values = [f.get_db_prep_save(f.pre_save(instance, add=True), connection) for f in fields]
    quote = connection.ops.quote_name
    target = quote(opts.db_table) + (f" AS {alias}" if alias else "")
    return (f"INSERT INTO {target} ({', '.join(quote(f.column) for f in fields)}) "
            f"VALUES ({', '.join(['%s'] * len(fields))})"), values
