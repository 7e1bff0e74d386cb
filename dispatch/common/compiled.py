"""Queries whose SQL the ORM writes once per process, then runs with new values each time.

On the hot paths (every agent command, every inbound message) building a statement through the
ORM costs more CPU than the database spends running it: a lookup of a ticket with its site
compiles some sixty columns, quotes each name and resolves each converter, about 0.3 ms, for
an indexed read that takes PostgreSQL a fraction of that. A CompiledQuery keeps the ORM the
only author of the SQL: it builds the queryset once with marker values in place of the
caller's, keeps the compiled statement and what the compiler learnt about its columns, and
afterwards only binds values and turns rows into the model instances (or tuples) the queryset
itself would have returned.

Only lookups that hand a value to the database unchanged can be compiled this way (`exact`,
`in` over a fixed list, comparisons, `Upper(...) == Upper(Value(...))`); one that rewrites
it (`iexact` on SQLite escapes LIKE wildcards, `startswith` appends one) is refused when the
statement is first compiled, so a wrong binding can never reach the database.

On PostgreSQL the statements are also prepared once per connection (see
dispatch.common.postgresql), so the server does not parse and plan them again either.
"""
from __future__ import annotations

import secrets
import threading
import uuid
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable, Iterable, Mapping

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Field, Model, QuerySet, signals
from django.core.exceptions import EmptyResultSet
from django.db.models.query import ModelIterable, ValuesListIterable, get_related_populators
from django.db.transaction import TransactionManagementError


def _marker(kind: type) -> Any:
    """A value no caller would pass, standing for a parameter while the query is compiled."""
    if kind is str:
        # LIKE wildcards, an escape character and both cases: a lookup that rewrites its value
        # in any way (escaping, case folding, appending a wildcard) shows it changed.
        return f"\x1f%_\\Aa{secrets.token_hex(6)}"
    if kind is uuid.UUID:
        return uuid.UUID(int=secrets.randbits(128))
    if kind is int:
        # Within every integer column's range, so that the ORM does not fold the lookup into an
        # empty result as it does for an out-of-range value.
        return 20_000 + secrets.randbelow(12_000)
    raise TypeError(f"A compiled query takes str, int or uuid.UUID values, not {kind.__name__}.")


def _statement_cursor(connection):
    """A cursor for one of these fixed statements: on PostgreSQL (dispatch.common.postgresql) it
    is prepared once per connection, so the server neither parses nor plans it again."""
    opener = getattr(connection, "statement_cursor", None)
    return opener() if opener is not None else connection.cursor()


def _uuid_hex(value: Any) -> str:
    return _as_uuid(value).hex


def _as_uuid(value: Any) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def _verbatim(value: Any) -> Any:
    return value


def _value_check(name: str, kind: type, value: Any) -> None:
    # None would bind as `= NULL` (no row), where the ORM writes IS NULL: refuse it, and any
    # value of another type, rather than answer differently from the queryset.
    if kind is uuid.UUID and isinstance(value, str):
        return
    if not isinstance(value, kind) or isinstance(value, bool):
        raise TypeError(f"{name!r} must be {kind.__name__}, not {type(value).__name__}.")


@dataclass(frozen=True)
class _Plan:
    # None when the queryset can match nothing (e.g. `code__in=[]`): no statement is run.
    sql: str | None
    params: tuple
    # SELECT ... FOR UPDATE: like the ORM, refuse to run it outside a transaction.
    locks: bool
    # (position in params, parameter name, how the value is written for this database)
    slots: tuple[tuple[int, str, Callable[[Any], Any]], ...]
    # Per selected column: the converters the ORM applies to it, and the expression they take.
    converters: tuple[tuple[int, tuple[Callable, ...], Any], ...]
    # For querysets of model instances (None for values_list).
    model: type[Model] | None
    init_list: tuple[str, ...]
    model_slice: slice
    related_populators: tuple
    annotations: tuple[tuple[str, int], ...]


class CompiledQuery:
    """A SELECT built by `build(**markers)`, compiled on first use per database, then only bound.

    `kinds` names every keyword `build` takes and the type of its value (str, int, uuid.UUID);
    each must reach the SQL as one or more plain parameters.
    """

    def __init__(self, build: Callable[..., QuerySet], **kinds: type) -> None:
        self._build = build
        self._kinds = kinds
        self._plans: dict[str, _Plan] = {}
        self._lock = threading.Lock()

    def _plan(self, using: str) -> _Plan:
        plan = self._plans.get(using)
        if plan is None:
            with self._lock:
                plan = self._plans.get(using) or self._compile(using)
                self._plans[using] = plan
        return plan

    def _compiled_with_markers(self, using: str) -> tuple[QuerySet, Any, str | None, list, dict[str, Any]]:
        markers = {name: _marker(kind) for name, kind in self._kinds.items()}
        queryset = self._build(**markers).using(using)
        if queryset._prefetch_related_lookups or queryset._iterable_class not in (ModelIterable, ValuesListIterable):
            raise TypeError("A compiled query returns model instances or values_list() tuples, without prefetches.")
        compiler = queryset.query.get_compiler(using=using)
        try:
            sql, params = compiler.as_sql()
        except EmptyResultSet:
            return queryset, compiler, None, [], markers
        return queryset, compiler, sql, list(params), markers

    def _compile(self, using: str) -> _Plan:
        # Compiled twice with different markers: the SQL text must not change, and every
        # parameter that does change must be one of the markers exactly as given (or, for a
        # UUID, its hex form where the database stores that). A constant that happens to equal
        # one marker cannot equal both, and a lookup that rewrites its value matches neither.
        queryset, compiler, sql, params, markers = self._compiled_with_markers(using)
        if sql is None:
            return _Plan(None, (), False, (), (), None, (), slice(0), (), ())
        _, _, other_sql, other_params, other_markers = self._compiled_with_markers(using)
        if other_sql != sql or len(other_params) != len(params):
            raise TypeError("A value was written into the SQL text instead of a parameter; it cannot be compiled.")
        slots = []
        for position, (param, other) in enumerate(zip(params, other_params)):
            if param == other:
                continue
            for name, marker in markers.items():
                if param == marker and other == other_markers[name]:
                    slots.append((position, name, _as_uuid if isinstance(marker, uuid.UUID) else _verbatim))
                    break
                if isinstance(marker, uuid.UUID) and (param, other) == (marker.hex, other_markers[name].hex):
                    slots.append((position, name, _uuid_hex))
                    break
            else:
                raise TypeError(f"A lookup rewrites its value ({param!r}); it cannot be compiled.")
        for name in markers:
            if not any(slot_name == name for _, slot_name, _ in slots):
                raise TypeError(f"{name!r} does not reach the SQL as a plain parameter.")
        locks = queryset.query.select_for_update and connections[using].features.has_select_for_update
        columns = [selected[0] for selected in compiler.select[: compiler.col_count]]
        converters = tuple(
            (position, tuple(functions), expression)
            for position, (functions, expression) in compiler.get_converters(columns).items()
        )
        klass_info = compiler.klass_info
        if klass_info is None or queryset._iterable_class is not ModelIterable:
            return _Plan(sql, tuple(params), locks, tuple(slots), converters, None, (), slice(0), (), ())
        fields = klass_info["select_fields"]
        start, end = fields[0], fields[-1] + 1
        return _Plan(
            sql=sql,
            params=tuple(params),
            locks=locks,
            slots=tuple(slots),
            converters=converters,
            model=klass_info["model"],
            init_list=tuple(selected[0].target.attname for selected in compiler.select[start:end]),
            model_slice=slice(start, end),
            related_populators=tuple(get_related_populators(klass_info, compiler.select, using)),
            annotations=tuple((compiler.annotation_col_map or {}).items()),
        )

    def _rows(self, plan: _Plan, using: str, values: dict[str, Any]) -> list[list]:
        if values.keys() != self._kinds.keys():
            raise TypeError(f"Expected values for {sorted(self._kinds)}, got {sorted(values)}.")
        for name, value in values.items():
            _value_check(name, self._kinds[name], value)
        if plan.sql is None:
            return []
        bound = list(plan.params)
        for position, name, write in plan.slots:
            bound[position] = write(values[name])
        connection = connections[using]
        if plan.locks and connection.get_autocommit():
            raise TransactionManagementError("select_for_update cannot be used outside of a transaction.")
        with _statement_cursor(connection) as cursor:
            cursor.execute(plan.sql, bound)
            rows = [list(row) for row in cursor.fetchall()]
        for row in rows:
            for position, functions, expression in plan.converters:
                value = row[position]
                for function in functions:
                    value = function(value, expression, connection)
                row[position] = value
        return rows

    def objects(self, *, using: str = DEFAULT_DB_ALIAS, **values: Any) -> list[Model]:
        """The model instances the queryset would return for these values (select_related included)."""
        plan = self._plan(using)
        if plan.model is None and plan.sql is not None:
            raise TypeError("This compiled query selects values, not model instances; use rows().")
        found = []
        for row in self._rows(plan, using, values):
            instance = plan.model.from_db(using, plan.init_list, row[plan.model_slice])
            for populator in plan.related_populators:
                populator.populate(row, instance)
            for name, position in plan.annotations:
                setattr(instance, name, row[position])
            found.append(instance)
        return found

    def rows(self, *, using: str = DEFAULT_DB_ALIAS, **values: Any) -> list[tuple]:
        """The converted rows of a values_list() queryset for these values."""
        plan = self._plan(using)
        if plan.model is not None:
            raise TypeError("This compiled query selects model instances; use objects().")
        return [tuple(row) for row in self._rows(plan, using, values)]


# --- Single-row writes ----------------------------------------------------------------------
# The same trade for the INSERT and UPDATE every command writes: the statement for a model (and
# a set of columns) is written once, and each call only prepares the values, field by field, as
# Model.save would. Neither runs the model's save() nor sends save signals, so they serve only
# models whose save() adds nothing to a plain write and that no receiver listens to. That is
# checked on every call: with a save receiver connected (for any sender), row_insert falls back
# to save() and row_update refuses with TypeError, so such a change fails the test suite
# rather than skip its receiver quietly.


def _has_receivers(model: type[Model]) -> bool:
    return signals.pre_save.has_listeners(model) or signals.post_save.has_listeners(model)


@lru_cache(maxsize=None)
def _insert_statement(model: type[Model], using: str, with_pk: bool) -> tuple[str, tuple[Field, ...]]:
    quote = connections[using].ops.quote_name
    fields = tuple(field for field in model._meta.concrete_fields if with_pk or not field.primary_key)
    columns = ", ".join(quote(field.column) for field in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    return f"INSERT INTO {quote(model._meta.db_table)} ({columns}) VALUES ({placeholders})", fields


def _insert_parts(instance: Model, using: str) -> tuple[str, list]:
    connection = connections[using]
    sql, fields = _insert_statement(type(instance), using, instance.pk is not None)
    # pre_save fills auto_now_add columns on the instance, as save() does.
    return sql, [field.get_db_prep_save(field.pre_save(instance, True), connection) for field in fields]


def _inserted(instance: Model, using: str) -> None:
    instance._state.adding = False
    instance._state.db = using


def row_insert(instance: Model, *, using: str = DEFAULT_DB_ALIAS) -> None:
    """INSERT a new instance. An auto-increment id left unset is given by the database and not read back."""
    if _has_receivers(type(instance)):
        instance.save(force_insert=True, using=using)
        return
    sql, params = _insert_parts(instance, using)
    with _statement_cursor(connections[using]) as cursor:
        cursor.execute(sql, params)
    _inserted(instance, using)


@lru_cache(maxsize=None)
def _update_statement(
    model: type[Model], using: str, names: tuple[str, ...], where: tuple[str, ...]
) -> tuple[str, tuple[Field, ...], tuple[Field, ...]]:
    quote = connections[using].ops.quote_name
    meta = model._meta
    fields = tuple(meta.get_field(name) for name in names)
    conditions = (meta.pk, *(meta.get_field(name) for name in where))
    assignments = ", ".join(f"{quote(field.column)} = %s" for field in fields)
    matches = " AND ".join(f"{quote(field.column)} = %s" for field in conditions)
    return f"UPDATE {quote(meta.db_table)} SET {assignments} WHERE {matches}", fields, conditions


def row_update(
    instance: Model,
    *,
    fields: Iterable[str],
    where: Mapping[str, Any] | None = None,
    insert_first: Model | None = None,
    using: str = DEFAULT_DB_ALIAS,
) -> int:
    """UPDATE these fields of a stored instance (auto_now ones are stamped, as save() does), on
    its primary key and, if given, the `where` column values; returns the number of rows written.

    `insert_first` is a new instance to INSERT just before, in the same statement where the
    database allows (PostgreSQL: a data-modifying WITH), which saves a round trip. It is written
    even when the update matches no row: a caller that refuses then must roll back, as the
    executor does.
    """
    model = type(instance)
    where = where or {}
    names = tuple(fields)
    if _has_receivers(model) or (insert_first is not None and _has_receivers(type(insert_first))):
        raise TypeError("A model with save receivers must be written with save().")
    connection = connections[using]
    sql, targets, conditions = _update_statement(model, using, names, tuple(where))
    params = [field.get_db_prep_save(field.pre_save(instance, False), connection) for field in targets]
    params.append(conditions[0].get_db_prep_value(instance.pk, connection))
    params.extend(field.get_db_prep_value(where[field.name], connection) for field in conditions[1:])
    if insert_first is not None:
        insert_sql, insert_params = _insert_parts(insert_first, using)
        if connection.vendor == "postgresql":
            # Data-modifying statements in WITH always run to completion, whatever the main
            # statement does; the row count is the UPDATE's.
            sql, params = f"WITH {connection.ops.quote_name('inserted')} AS ({insert_sql}) {sql}", [*insert_params, *params]
        else:
            with _statement_cursor(connection) as cursor:
                cursor.execute(insert_sql, insert_params)
    with _statement_cursor(connection) as cursor:
        cursor.execute(sql, params)
        written = cursor.rowcount
    if insert_first is not None:
        _inserted(insert_first, using)
    return written
