"""Amazon DynamoDB in memory: the requests ``payments_drain.adapters.ledger.DynamoLedger`` and
``payments_drain.adapters.rate_slots.DynamoRateSlots`` make, answered as DynamoDB answers them.

``SimDynamoDB`` takes the place of a boto3 DynamoDB client (both adapters accept ``client=``):
same method names, request and response shapes (typed values such as ``{"S": "x"}``), and errors
raised as botocore's ``ClientError`` subclasses with DynamoDB's codes. It is held to AWS's
DynamoDB Local by tests/contract/test_dynamodb_contract.py.

Simulated:
- tables with a hash key only (S, N or B), made by ``create_table`` (on demand); attribute values
  S, N (stored normalized, as DynamoDB does), B, BOOL and NULL;
- BatchExecuteStatement with the two PartiQL forms the ledger builds (``INSERT INTO "t" VALUE
  {'a': ?, ...}``: ``DuplicateItem`` when the key exists; ``DELETE FROM "t" WHERE "a" = ? AND
  ...``: ``ConditionalCheckFailed`` when an item is there and the WHERE does not hold, success on
  a missing key, as DynamoDB Local answers), BatchGetItem, BatchWriteItem (PutRequest), PutItem,
  UpdateItem (``SET`` of values), GetItem; strongly consistent reads;
- expressions: ``= <> < <= > >=``, AND, OR, NOT, parentheses, ``attribute_exists``,
  ``attribute_not_exists``, ``#name`` and ``:value`` placeholders, bare names; with the checks
  DynamoDB makes (reserved words, undefined, unused or empty placeholder maps, overlapping paths,
  a key attribute in a SET, operand types, ``limits.DDB_EXPRESSION_BYTES``);
- the request limits of ``payments_drain.core.limits`` (statements, writes and keys per batch,
  duplicate keys in one batch);
- throughput per item and wall-clock second of the clock (``limits.DDB_ITEM_WCU_PER_S``,
  ``DDB_ITEM_RCU_PER_S``): a write costs ceil(size / 1 KB) units (the larger of the item before
  and after), a strongly consistent read ceil(size / 4 KB), a missing item 1; a write refused by
  its condition still costs (``DDB_CONDITIONAL_WRITE_COST``); past the limit the request (or the
  statement, or the batch's item) is refused and costs nothing. Counted in ``units``, ``totals``;
- faults (``DynamoFaults``): latency before a request applies, whole-request errors and
  throttles, per-statement throttles, unprocessed batch items. All randomness comes from ``rng``.

Not simulated, and refused with NotImplementedError: range keys, indexes, lists, maps and sets,
eventually consistent reads, DeleteRequest, ReturnValues, nested paths, other functions and
operators (BETWEEN, IN, begins_with, size...), REMOVE/ADD/DELETE and ``SET a = b`` updates,
other PartiQL statements, ConsumedCapacity. Not modelled at all: the 300 operators per expression
(no row in ``limits`` yet), the 400 KB item size, burst and adaptive capacity (the per-item budget
is a hard bucket per second), TTL deletion (``expiresAt`` is kept, never acted on), the order of
BatchGetItem's answers (request order here).
"""

from __future__ import annotations

import math
import re
import threading
from collections import Counter, defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import cache

import botocore.session
from botocore.errorfactory import ClientExceptionsFactory
from payments_drain.core import limits

# Capacity unit sizes (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/
# capacity-mode.html#HowItWorks.requests): a write unit is 1 KB, a strongly consistent read 4 KB.
WRITE_UNIT_BYTES = 1024
READ_UNIT_BYTES = 4 * 1024
VALIDATION = "ValidationException"
THROUGHPUT = "ProvisionedThroughputExceededException"
CONDITION_FAILED = "ConditionalCheckFailedException"
THROUGHPUT_MESSAGE = (
    "Throughput exceeds the current capacity of your table or index. DynamoDB is automatically "
    "scaling your table or index so please try again shortly."
)
STATEMENT_THROTTLES = ("ThrottlingError", "ProvisionedThroughputExceeded")  # BatchStatementError codes
SCALARS = frozenset({"S", "N", "B", "BOOL", "NULL"})
ORDERED = frozenset({"S", "N", "B"})
COMPARATORS = frozenset({"=", "<>", "<", "<=", ">", ">="})


@dataclass(frozen=True)
class DynamoFaults:
    """What goes wrong, each at random (from the simulator's ``rng``); the defaults: nothing."""

    latency_s: float = 0.0  # every request first sleeps latency_s + uniform(0, jitter_s)
    jitter_s: float = 0.0
    p_request_error: float = 0.0  # the request fails with InternalServerError, nothing applied
    p_throttle_request: float = 0.0  # it fails with ProvisionedThroughputExceededException
    p_statement_throttle: float = 0.0  # one statement of a BatchExecuteStatement is throttled
    p_unprocessed: float = 0.0  # one item or key of a BatchWriteItem / BatchGetItem is left over
    # (unprocessed, in a 200 answer even if all are; a batch of which no item could be written or
    # read for the per-item throughput fails whole, as DynamoDB's does)


@dataclass
class Units:
    write: int = 0
    read: int = 0


@dataclass
class _Table:
    name: str
    key: str  # the hash key's attribute name
    key_type: str  # S, N or B
    items: dict = field(default_factory=dict)  # key value -> item


class _Refused(Exception):
    """DynamoDB's answer to a request it refuses: becomes a ClientError of the operation."""

    def __init__(self, code: str, message: str, **extra) -> None:
        super().__init__(message)
        self.code, self.message, self.extra = code, message, extra


@cache
def _exceptions():
    """botocore's exception classes for DynamoDB (``client.exceptions`` of a real client)."""
    model = botocore.session.get_session().get_service_model("dynamodb")
    return ClientExceptionsFactory().create_client_exceptions(model)


class SimDynamoDB:
    """A DynamoDB client and its tables; see the module's docstring for what is simulated."""

    def __init__(self, clock, rng, faults: DynamoFaults | None = None) -> None:
        self.clock, self.rng, self.faults = clock, rng, faults or DynamoFaults()
        self.tables: dict[str, _Table] = {}
        self.units: defaultdict[tuple[str, object, int], Units] = defaultdict(Units)  # (table, key, s)
        self.totals = Units()
        self.calls: Counter[str] = Counter()  # per operation, e.g. "PutItem"
        self.exceptions = _exceptions()
        self._lock = threading.Lock()  # the adapters call from their thread pools

    # -- control plane (no faults, no latency) ---------------------------------------------------
    def create_table(self, *, TableName, KeySchema, AttributeDefinitions, BillingMode="PROVISIONED", **other):
        self.calls["CreateTable"] += 1
        _unsupported("CreateTable", other)
        if BillingMode != "PAY_PER_REQUEST" or len(KeySchema) != 1 or KeySchema[0]["KeyType"] != "HASH":
            raise NotImplementedError("SimDynamoDB: only on-demand tables with a hash key alone")
        key = KeySchema[0]["AttributeName"]
        [key_type] = [a["AttributeType"] for a in AttributeDefinitions if a["AttributeName"] == key]
        if TableName in self.tables:
            raise self._client_error(
                "CreateTable", _Refused("ResourceInUseException", "Cannot create preexisting table")
            )
        self.tables[TableName] = _Table(TableName, key, key_type)
        description = {"TableName": TableName, "TableStatus": "ACTIVE", "KeySchema": KeySchema}
        return {"TableDescription": {**description, "AttributeDefinitions": AttributeDefinitions}}

    # -- data plane ------------------------------------------------------------------------------
    def batch_execute_statement(self, *, Statements, **other):
        with self._request("BatchExecuteStatement", other):
            if len(Statements) > limits.DDB_BATCH_STATEMENTS.value:
                raise _Refused(
                    VALIDATION,
                    f"BatchWriteItem cannot write more than {limits.DDB_BATCH_STATEMENTS.value} items",
                )
            planned = [self._plan(statement) for statement in Statements]
            _no_duplicates([(p[1].name, p[2]) for p in planned if isinstance(p, tuple)])
            return _ok(Responses=[p if isinstance(p, dict) else self._run(*p) for p in planned])

    def batch_write_item(self, *, RequestItems, **other):
        with self._request("BatchWriteItem", other):
            if sum(map(len, RequestItems.values())) > limits.DDB_BATCH_WRITE_ITEMS.value:
                raise _Refused(VALIDATION, "Too many items requested for the BatchWriteItem call")
            puts = []
            for name, requests in RequestItems.items():
                table = self._table(name)
                for request in requests:
                    if set(request) != {"PutRequest"}:
                        raise NotImplementedError(f"SimDynamoDB.batch_write_item: {sorted(request)}")
                    item = _item(request["PutRequest"]["Item"])
                    puts.append((table, self._key(table, item, whole_item=True), item, request))
            _no_duplicates([(table.name, key) for table, key, _, _ in puts])
            unprocessed: dict[str, list] = {}
            throttled = 0
            for table, key, item, request in puts:
                if not self._chance(self.faults.p_unprocessed):
                    try:
                        self._write(table, key, item)
                        continue
                    except _Refused:  # a put has no condition: past the item's write units
                        throttled += 1
                unprocessed.setdefault(table.name, []).append(request)
            if puts and throttled == len(puts):  # none could be written for throughput: it fails
                raise _Refused(THROUGHPUT, THROUGHPUT_MESSAGE)
            return _ok(UnprocessedItems=unprocessed)

    def batch_get_item(self, *, RequestItems, **other):
        with self._request("BatchGetItem", other):
            if sum(len(spec["Keys"]) for spec in RequestItems.values()) > limits.DDB_BATCH_GET_KEYS.value:
                raise _Refused(VALIDATION, "Too many items requested for the BatchGetItem call")
            gets = []
            for name, spec in RequestItems.items():
                rest = {k: v for k, v in spec.items() if k != "Keys"}
                paths = self._projection("BatchGetItem", **rest)  # same checks as GetItem's, per table
                table = self._table(name)
                gets += [(table, self._key(table, key), key, paths, rest) for key in spec["Keys"]]
            _no_duplicates([(table.name, key) for table, key, _, _, _ in gets])
            responses: dict[str, list] = {name: [] for name in RequestItems}
            unprocessed: dict[str, dict] = {}
            throttled = 0
            for table, key, raw_key, paths, rest in gets:
                if not self._chance(self.faults.p_unprocessed):
                    if self._read(table, key):
                        if key in table.items:
                            responses[table.name].append(_project(table.items[key], paths))
                        continue
                    throttled += 1
                unprocessed.setdefault(table.name, {**rest, "Keys": []})["Keys"].append(raw_key)
            if gets and throttled == len(gets):  # none could be read for throughput: it fails
                raise _Refused(THROUGHPUT, THROUGHPUT_MESSAGE)
            return _ok(Responses=responses, UnprocessedKeys=unprocessed)

    def get_item(self, *, TableName, Key, **other):
        options = {k: other.pop(k) for k in list(other) if k in _READ_OPTIONS}
        with self._request("GetItem", other):
            paths = self._projection("GetItem", **options)
            table = self._table(TableName)
            key = self._key(table, Key)
            if not self._read(table, key):
                raise _Refused(THROUGHPUT, THROUGHPUT_MESSAGE)
            return _ok(**({"Item": _project(table.items[key], paths)} if key in table.items else {}))

    def put_item(
        self,
        *,
        TableName,
        Item,
        ConditionExpression=None,
        ExpressionAttributeNames=None,
        ExpressionAttributeValues=None,
        ReturnValuesOnConditionCheckFailure="NONE",
        **other,
    ):
        with self._request("PutItem", other):
            expressions = _Expressions(ExpressionAttributeNames, ExpressionAttributeValues)
            condition = expressions.condition(ConditionExpression)
            expressions.done()
            table = self._table(TableName)
            item = _item(Item)
            key = self._key(table, item, whole_item=True)
            self._write(table, key, item, condition, _return_old(ReturnValuesOnConditionCheckFailure))
            return _ok()

    def update_item(
        self,
        *,
        TableName,
        Key,
        UpdateExpression=None,
        ConditionExpression=None,
        ExpressionAttributeNames=None,
        ExpressionAttributeValues=None,
        ReturnValuesOnConditionCheckFailure="NONE",
        ReturnValues="NONE",
        **other,
    ):
        with self._request("UpdateItem", other):
            if UpdateExpression is None or ReturnValues != "NONE":
                raise NotImplementedError("SimDynamoDB.update_item: an UpdateExpression, ReturnValues NONE")
            expressions = _Expressions(ExpressionAttributeNames, ExpressionAttributeValues)
            sets = expressions.update(UpdateExpression)
            condition = expressions.condition(ConditionExpression)
            expressions.done()
            table = self._table(TableName)
            key = self._key(table, Key)
            if table.key in sets:
                raise _Refused(
                    VALIDATION,
                    "One or more parameter values were invalid: Cannot update attribute "
                    f"{table.key}. This attribute is part of the key",
                )
            new = {**(table.items.get(key) or {table.key: _item(Key)[table.key]}), **sets}
            self._write(table, key, new, condition, _return_old(ReturnValuesOnConditionCheckFailure))
            return _ok()

    # -- the machinery ---------------------------------------------------------------------------
    @contextmanager
    def _request(self, operation: str, other: dict):
        """Count the call, refuse what is not simulated, sleep the latency (outside the lock: the
        scheduler may run other actors meanwhile), then, one request at a time, inject the
        request's faults and run it; a refusal becomes a ClientError."""
        faults = self.faults
        with self._lock:
            self.calls[operation] += 1
            _unsupported(operation, other)
            delay = faults.latency_s + (self.rng.uniform(0, faults.jitter_s) if faults.jitter_s else 0.0)
        if delay > 0:
            self.clock.sleep(delay)
        try:
            with self._lock:
                if self._chance(faults.p_request_error):
                    raise _Refused("InternalServerError", "Internal server error")
                if self._chance(faults.p_throttle_request):
                    raise _Refused(THROUGHPUT, THROUGHPUT_MESSAGE)
                yield
        except _Refused as refused:
            raise self._client_error(operation, refused) from None

    def _client_error(self, operation: str, refused: _Refused):
        status = 500 if refused.code == "InternalServerError" else 400
        response = {
            "Error": {"Code": refused.code, "Message": refused.message},
            "ResponseMetadata": {"HTTPStatusCode": status},
            **refused.extra,
        }
        return self.exceptions.from_code(refused.code)(response, operation)

    def _chance(self, p: float) -> bool:
        return p > 0 and self.rng.random() < p

    def _table(self, name: str) -> _Table:
        if name not in self.tables:
            raise _Refused("ResourceNotFoundException", "Cannot do operations on a non-existent table")
        return self.tables[name]

    def _key(self, table: _Table, attrs: dict, whole_item: bool = False):
        """The key value of an item (or of a Key), checked as DynamoDB checks it."""
        if table.key not in attrs:
            raise _Refused(VALIDATION, "One of the required keys was not given a value")
        if not whole_item and len(attrs) != 1:
            raise _Refused(VALIDATION, "The number of conditions on the keys is invalid")
        value = _value(attrs[table.key])
        if table.key_type not in value:
            raise _Refused(VALIDATION, "One or more parameter values were invalid: Type mismatch for key")
        if value[table.key_type] in ("", b""):
            raise _Refused(
                VALIDATION,
                "One or more parameter values are not valid. The AttributeValue for a key attribute "
                f"cannot contain an empty string value. Key: {table.key}",
            )
        return value[table.key_type]

    def _projection(
        self,
        operation,
        ConsistentRead=False,
        ProjectionExpression=None,
        ExpressionAttributeNames=None,
        **other,
    ):
        _unsupported(operation, other)
        if ConsistentRead is not True:
            raise NotImplementedError(f"SimDynamoDB.{operation}: eventually consistent reads")
        expressions = _Expressions(ExpressionAttributeNames, None)
        paths = expressions.projection(ProjectionExpression)
        expressions.done()
        return paths

    def _take(self, table: _Table, key, write: int = 0, read: int = 0) -> bool:
        """Charge the item's units in this second of the clock; False (nothing charged) past its
        per-item limit."""
        cell = self.units[(table.name, key, int(self.clock.wall()))]
        if (
            cell.write + write > limits.DDB_ITEM_WCU_PER_S.value
            or cell.read + read > limits.DDB_ITEM_RCU_PER_S.value
        ):
            return False
        cell.write, cell.read = cell.write + write, cell.read + read
        self.totals.write, self.totals.read = self.totals.write + write, self.totals.read + read
        return True

    def _read(self, table: _Table, key) -> bool:
        return self._take(table, key, read=_units(_size(table.items.get(key)), READ_UNIT_BYTES))

    def _write(self, table: _Table, key, new: dict | None, condition=None, return_old=False) -> None:
        """Put ``new`` (None: delete) at ``key`` if ``condition`` (an expression tree or a
        function of the old item) holds; the units are charged whether it holds or not."""
        old = table.items.get(key)
        holds = condition is None or (condition(old) if callable(condition) else _holds(condition, old or {}))
        if holds:
            units = _units(max(_size(old), _size(new)), WRITE_UNIT_BYTES)
        else:
            units = refused_write_units(old)
        if not self._take(table, key, write=units):
            raise _Refused(THROUGHPUT, THROUGHPUT_MESSAGE)
        if not holds:
            extra = {"Item": _copy(old)} if return_old and old is not None else {}
            raise _Refused(CONDITION_FAILED, "The conditional request failed", **extra)
        if new is None:
            table.items.pop(key, None)
        else:
            table.items[key] = new

    def _plan(self, statement: dict):
        """(kind, table, key, values) for one PartiQL statement, or its error response."""
        if set(statement) - {"Statement", "Parameters"}:
            raise NotImplementedError(f"SimDynamoDB: statement options {sorted(statement)}")
        kind, table_name, names = _parse_statement(statement["Statement"])
        parameters = statement.get("Parameters", [])
        try:
            if len(parameters) != len(names):
                raise _Refused(
                    "ValidationError", "Number of parameters in request and statement don't match."
                )
            table = self.tables.get(table_name)
            if table is None:
                return {
                    "Error": {
                        "Code": "ResourceNotFound",
                        "Message": "Cannot do operations on a non-existent table",
                    }
                }
            values = dict(zip(names, map(_value, parameters)))
            if table.key not in values:
                raise _Refused(
                    "ValidationError",
                    f"Key attribute should be present in the item: Key {table.key}"
                    if kind == "INSERT"
                    else "Where clause does not contain a mandatory equality on all key attributes",
                )
            if table.key_type not in values[table.key]:
                raise _Refused(
                    "ValidationError",
                    f"Key attribute's data type should match its data type in table's schema: Key {table.key}",
                )
            return kind, table, self._key(table, values, whole_item=True), values
        except _Refused as refused:
            return {"Error": {"Code": "ValidationError", "Message": refused.message}}

    def _run(self, kind: str, table: _Table, key, values: dict) -> dict:
        """One planned statement: its response in the batch's answer."""
        if self._chance(self.faults.p_statement_throttle):
            code = self.rng.choice(STATEMENT_THROTTLES)
            return {"Error": {"Code": code, "Message": THROUGHPUT_MESSAGE}, "TableName": table.name}
        try:
            if kind == "INSERT":
                self._write(table, key, values, lambda old: old is None)
            else:
                where = lambda old: old is None or all(_equal(old.get(n), v) for n, v in values.items())  # noqa: E731
                self._write(table, key, None, where)
        except _Refused as refused:
            if refused.code == THROUGHPUT:
                error = {"Code": "ProvisionedThroughputExceeded", "Message": refused.message}
            elif kind == "INSERT":
                error = {"Code": "DuplicateItem", "Message": "Duplicate primary key exists in table"}
            else:
                error = {"Code": "ConditionalCheckFailed", "Message": refused.message}
            return {"Error": error, "TableName": table.name}
        return {"TableName": table.name}


# -- values and items ----------------------------------------------------------------------------
_READ_OPTIONS = frozenset({"ConsistentRead", "ProjectionExpression", "ExpressionAttributeNames"})


def create_hash_table(client, name: str, key: str) -> None:
    """An on-demand table keyed by the string ``key`` alone, the shape of the drain's ledger and
    rate slots tables (for a SimDynamoDB or a boto3 client alike)."""
    client.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )


def _unsupported(operation: str, other: dict) -> None:
    if other:
        raise NotImplementedError(f"SimDynamoDB.{operation}: {sorted(other)} not simulated")


def _ok(**response) -> dict:
    return {**response, "ResponseMetadata": {"HTTPStatusCode": 200}}


def _return_old(option: str) -> bool:
    if option not in ("NONE", "ALL_OLD"):
        raise NotImplementedError(f"SimDynamoDB: ReturnValuesOnConditionCheckFailure={option}")
    return option == "ALL_OLD"


def _no_duplicates(keys: list) -> None:
    if len(keys) != len(set(keys)):
        raise _Refused(VALIDATION, "Provided list of item keys contains duplicates")


def _value(value: dict) -> dict:
    """A checked copy of one attribute value, a number normalized as DynamoDB stores it."""
    if not isinstance(value, dict) or len(value) != 1:
        raise _Refused(
            VALIDATION, "Supplied AttributeValue must contain exactly one of the supported datatypes"
        )
    [(kind, raw)] = value.items()
    if kind not in SCALARS:
        raise NotImplementedError(f"SimDynamoDB: attribute values of type {kind}")
    if kind != "N":
        return {kind: raw}
    try:
        number = Decimal(raw)
    except InvalidOperation:
        number = Decimal("NaN")
    if not number.is_finite():
        raise _Refused(VALIDATION, "A value provided cannot be converted into a number")
    return {"N": "0" if number == 0 else format(number.normalize(), "f")}


def _item(item: dict) -> dict:
    return {name: _value(value) for name, value in item.items()}


def _copy(item: dict) -> dict:
    return {name: dict(value) for name, value in item.items()}


def _project(item: dict, paths: list[str] | None) -> dict:
    return _copy({n: v for n, v in item.items() if paths is None or n in paths})


def _size(item: dict | None) -> int:
    """DynamoDB's item size: names and values in bytes, a number 1 byte per 2 significant digits
    plus 1 (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html)."""
    total = 0
    for name, value in (item or {}).items():
        [(kind, raw)] = value.items()
        if kind == "S":
            size = len(raw.encode())
        elif kind == "B":
            size = len(raw)
        elif kind == "N":
            size = (len(raw.lstrip("-").replace(".", "").strip("0") or "0") + 1) // 2 + 1
        else:
            size = 1
        total += len(name.encode()) + size
    return total


def _units(size: int, per: int) -> int:
    return max(1, math.ceil(size / per))


def refused_write_units(item: dict | None) -> int:
    """What DynamoDB charges a conditional write it refuses on ``item`` (as ``_write`` does)."""
    return max(limits.DDB_CONDITIONAL_WRITE_COST.value, _units(_size(item), WRITE_UNIT_BYTES))


def _equal(a: dict | None, b: dict | None) -> bool:
    if a is None or b is None or a.keys() != b.keys():
        return False
    [(kind, x)] = a.items()
    return Decimal(x) == Decimal(b[kind]) if kind == "N" else x == b[kind]


# -- PartiQL: the two statement forms the ledger builds ------------------------------------------
_INSERT = re.compile(r'\s*INSERT\s+INTO\s+"([^"]+)"\s+VALUE\s+\{(.*)\}\s*', re.I | re.S)
_FIELD = re.compile(r"\s*'([^']+)'\s*:\s*\?\s*")
_DELETE = re.compile(r'\s*DELETE\s+FROM\s+"([^"]+)"\s+WHERE\s+(.*)', re.I | re.S)
_EQUALS = re.compile(r'\s*"([^"]+)"\s*=\s*\?\s*')


def _parse_statement(text: str) -> tuple[str, str, list[str]]:
    for kind, form, separator, part in (
        ("INSERT", _INSERT, ",", _FIELD),
        ("DELETE", _DELETE, r"\bAND\b", _EQUALS),
    ):
        if match := form.fullmatch(text):
            fields = [part.fullmatch(p) for p in re.split(separator, match.group(2), flags=re.I)]
            if all(fields):
                return kind, match.group(1), [f.group(1) for f in fields]
    raise NotImplementedError(f"SimDynamoDB: PartiQL statement not simulated: {text!r}")


# -- expressions ---------------------------------------------------------------------------------
_TOKEN = re.compile(
    r"\s*(?:(?P<op><>|<=|>=|=|<|>|\(|\)|,)|(?P<name>#[A-Za-z0-9_]+)|(?P<value>:[A-Za-z0-9_]+)"
    r"|(?P<word>[A-Za-z_][A-Za-z0-9_]*)|(?P<other>\S))"
)
_FUNCTIONS = {"attribute_exists": True, "attribute_not_exists": False}


class _Expressions:
    """The expressions of one request, parsed against its placeholder maps: a condition becomes a
    tree of tuples (``_holds`` evaluates it), an update a dict of the SET values, a projection a
    list of names. ``done`` refuses the maps' empty or unused entries, as DynamoDB does."""

    def __init__(self, names: dict | None, values: dict | None) -> None:
        self.names, self.values = names, values
        self.used_names: set[str] = set()
        self.used_values: set[str] = set()
        self.any = self.any_values = False  # any expression given; any that takes values

    def condition(self, text: str | None):
        if text is None:
            return None
        self._start("ConditionExpression", text, values=True)
        tree = self._or()
        self._end()
        return tree

    def update(self, text: str) -> dict:
        self._start("UpdateExpression", text, values=True)
        if self._word() != "set":
            raise NotImplementedError(f"SimDynamoDB: only SET updates are simulated: {text!r}")
        self._next()
        sets: dict[str, dict] = {}
        while True:
            name = self._path()
            self._expect("=")
            kind, value = self._operand()
            if kind != "value" or self._peek()[1] not in (",", None):
                raise NotImplementedError(f"SimDynamoDB: only SET path = :value is simulated: {text!r}")
            self._unique(name, sets)
            sets[name] = value
            if self._peek()[1] != ",":
                break
            self._next()
        if self._word() in ("remove", "add", "delete", "set"):
            raise NotImplementedError(f"SimDynamoDB: only SET updates are simulated: {text!r}")
        self._end()
        return sets

    def projection(self, text: str | None) -> list[str] | None:
        if text is None:
            return None
        self._start("ProjectionExpression", text, values=False)
        paths = [self._path()]
        while self._peek()[1] == ",":
            self._next()
            name = self._path()
            self._unique(name, paths)
            paths.append(name)
        self._end()
        return paths

    def done(self) -> None:
        for label, given, used, any_ in (
            ("ExpressionAttributeNames", self.names, self.used_names, self.any),
            ("ExpressionAttributeValues", self.values, self.used_values, self.any_values),
        ):
            if given is None:
                continue
            if not given:
                raise _Refused(VALIDATION, f"{label} must not be empty")
            if not any_:
                raise _Refused(VALIDATION, f"{label} can only be specified when using expressions")
            if unused := sorted(set(given) - used):
                raise _Refused(
                    VALIDATION,
                    f"Value provided in {label} unused in expressions: keys: {{{', '.join(unused)}}}",
                )

    # the grammar: or := and (OR and)*; and := not (AND not)*; not := NOT not | primary;
    # primary := ( or ) | function ( path ) | operand comparator operand
    def _or(self):
        tree = self._and()
        while self._word() == "or":
            self._next()
            tree = ("or", tree, self._and())
        return tree

    def _and(self):
        tree = self._not()
        while self._word() == "and":
            self._next()
            tree = ("and", tree, self._not())
        return tree

    def _not(self):
        if self._word() == "not":
            self._next()
            return ("not", self._not())
        if self._peek()[1] == "(":
            self._next()
            tree = self._or()
            self._expect(")")
            return tree
        word = self._word()
        if word is not None and self._peek(1)[1] == "(":
            if word not in _FUNCTIONS:
                raise NotImplementedError(f"SimDynamoDB: function {word} not simulated ({self.kind})")
            self._next()
            self._expect("(")
            if self._peek()[0] != "name" and self._peek()[0] != "word":
                raise _Refused(
                    VALIDATION,
                    f"Invalid {self.kind}: Operator or function requires a document path; operator or "
                    f"function: {word}",
                )
            path = self._path()
            self._expect(")")
            return ("exists", path, _FUNCTIONS[word])
        left = self._operand()
        kind, op = self._peek()
        if op not in COMPARATORS:
            if kind == "word" and op.lower() in ("between", "in"):
                raise NotImplementedError(f"SimDynamoDB: {op} not simulated ({self.kind})")
            self._syntax_error()
        self._next()
        right = self._operand()
        for side_kind, side in (left, right):
            if op not in ("=", "<>") and side_kind == "value" and not side.keys() & ORDERED:
                raise _Refused(
                    VALIDATION,
                    f"Invalid {self.kind}: Incorrect operand type for operator or function; operator or "
                    f"function: {op}, operand type: {next(iter(side))}",
                )
        return ("cmp", op, left, right)

    def _operand(self) -> tuple[str, object]:
        kind, text = self._peek()
        if kind == "value":
            self._next()
            if self.values is None or text not in self.values:
                raise _Refused(
                    VALIDATION,
                    f"Invalid {self.kind}: An expression attribute value used in expression is not "
                    f"defined; attribute value: {text}",
                )
            self.used_values.add(text)
            return "value", _value(self.values[text])
        if kind == "word" and self._peek(1)[1] == "(":
            raise NotImplementedError(f"SimDynamoDB: function {text} not simulated ({self.kind})")
        return "path", self._path()

    def _path(self) -> str:
        kind, text = self._peek()
        self._next()
        if kind == "name":
            if self.names is None or text not in self.names:
                raise _Refused(
                    VALIDATION,
                    f"Invalid {self.kind}: An expression attribute name used in the document path is not "
                    f"defined; attribute name: {text}",
                )
            self.used_names.add(text)
            return self.names[text]
        if kind != "word":
            self.pos -= 1
            self._syntax_error()
        if text.lower() in RESERVED_WORDS:
            raise _Refused(
                VALIDATION,
                f"Invalid {self.kind}: Attribute name is a reserved keyword; reserved keyword: {text}",
            )
        return text

    def _unique(self, name: str, seen) -> None:
        if name in seen:
            raise _Refused(
                VALIDATION,
                f"Invalid {self.kind}: Two document paths overlap with each other; must remove or rewrite "
                f"one of these paths; path one: [{name}], path two: [{name}]",
            )

    # tokens
    def _start(self, kind: str, text: str, values: bool) -> None:
        if len(text.encode()) > limits.DDB_EXPRESSION_BYTES.value:
            raise _Refused(
                VALIDATION,
                f"Invalid {kind}: Expression size has exceeded the maximum allowed size; "
                f"expression size: {len(text.encode())}",
            )
        self.kind, self.pos, self.any = kind, 0, True
        self.any_values = self.any_values or values
        self.tokens = [(m.lastgroup, m.group(m.lastgroup)) for m in _TOKEN.finditer(text)]
        if other := [t for kind_, t in self.tokens if kind_ == "other"]:
            raise NotImplementedError(f"SimDynamoDB: {other[0]!r} in a {kind} not simulated: {text!r}")

    def _peek(self, ahead: int = 0) -> tuple[str | None, str | None]:
        at = self.pos + ahead
        return self.tokens[at] if at < len(self.tokens) else (None, None)

    def _word(self) -> str | None:
        kind, text = self._peek()
        return text.lower() if kind == "word" else None

    def _next(self) -> None:
        self.pos += 1

    def _expect(self, text: str) -> None:
        if self._peek()[1] != text:
            self._syntax_error()
        self._next()

    def _end(self) -> None:
        if self.pos != len(self.tokens):
            self._syntax_error()

    def _syntax_error(self):
        token = self._peek()[1] or "<EOF>"
        raise _Refused(VALIDATION, f'Invalid {self.kind}: Syntax error; token: "{token}"')


def _holds(tree, item: dict) -> bool:
    """A condition tree on an item (``{}`` when there is none), as DynamoDB evaluates it: a
    comparison with a missing attribute or one of another type is false (``<>``: true)."""
    tag = tree[0]
    if tag == "or":
        return _holds(tree[1], item) or _holds(tree[2], item)
    if tag == "and":
        return _holds(tree[1], item) and _holds(tree[2], item)
    if tag == "not":
        return not _holds(tree[1], item)
    if tag == "exists":
        return (tree[1] in item) == tree[2]
    _, op, left, right = tree
    a, b = ((item.get(x) if kind == "path" else x) for kind, x in (left, right))
    if op in ("=", "<>"):
        return _equal(a, b) == (op == "=")
    if a is None or b is None or a.keys() != b.keys() or not a.keys() & ORDERED:
        return False
    [(kind, x)] = a.items()
    x, y = (Decimal(x), Decimal(b[kind])) if kind == "N" else (x, b[kind])
    return {"<": x < y, "<=": x <= y, ">": x > y, ">=": x >= y}[op]


# DynamoDB's reserved words (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/
# ReservedWords.html), as DynamoDB Local 3.3.1 lists them: a bare attribute name among them is refused.
RESERVED_WORDS = frozenset(
    """
    abort absolute action add after agent aggregate all allocate alter analyze and any archive are
    array as asc ascii asensitive assertion asymmetric at atomic attach attribute auth authorization
    authorize auto avg back backup base batch before begin between bigint binary bit blob block boolean
    both breadth bucket bulk by byte call called calling capacity cascade cascaded case cast catalog
    char character check class clob close cluster clustered clustering clusters coalesce collate
    collation collection column columns combine comment commit compact compile compress condition
    conflict connect connection consistency consistent constraint constraints constructor consumed
    continue copy corresponding count counter create cross cube current cursor cycle data database date
    datetime day deallocate dec decimal declare default deferrable deferred define defined definition
    delete delimited depth deref desc describe descriptor detach deterministic diagnostics directories
    disable disconnect distinct distribute do domain double drop dump duration dynamic each element
    else elseif empty enable end equal equals error escape escaped eval evaluate exceeded except
    exception exceptions exclusive exec execute exists exit explain explode export expression extended
    external extract fail false family fetch fields file filter filtering final finish first fixed
    flattern float for force foreign format forward found free from full function functions general
    generate get glob global go goto grant greater group grouping handler hash have having heap hidden
    hold hour identified identity if ignore immediate import in including inclusive increment
    incremental index indexed indexes indicator infinite initially inline inner innter inout input
    insensitive insert instead int integer intersect interval into invalidate is isolation item items
    iterate join key keys lag language large last lateral lead leading leave left length less level
    like limit limited lines list load local localtime localtimestamp location locator lock locks log
    loged long loop lower map match materialized max maxlen member merge method metrics min minus
    minute missing mod mode modifies modify module month multi multiset name names national natural
    nchar nclob new next no none not null nullif number numeric object of offline offset old on online
    only opaque open operator option or order ordinality other others out outer output over overlaps
    override owner pad parallel parameter parameters partial partition partitioned partitions path
    percent percentile permission permissions pipe pipelined plan pool position precision prepare
    preserve primary prior private privileges procedure processed project projection property
    provisioning public put query quit quorum raise random range rank raw read reads real rebuild
    record recursive reduce ref reference references referencing regexp region reindex relative release
    remainder remove rename repeat replace request reset resignal resource response restore restrict
    result return returning returns reverse revoke right role roles rollback rollup routine row rows
    rule rules sample satisfies save savepoint scan schema scope scroll search second section segment
    segments select self semi sensitive separate sequence serializable session set sets shard share
    shared short show signal similar skewed smallint snapshot some source space spaces sparse specific
    specifictype split sql sqlcode sqlerror sqlexception sqlstate sqlwarning start state static status
    storage store stored stream string struct style sub submultiset subpartition substring subtype sum
    super symmetric synonym system table tablesample temp temporary terminated text than then
    throughput time timestamp timezone tinyint to token total touch trailing transaction transform
    translate translation treat trigger trim true truncate ttl tuple type under undo union unique unit
    unknown unlogged unnest unprocessed unsigned until update upper url usage use user users using uuid
    vacuum value valued values varchar variable variance varint varying view views virtual void wait
    when whenever where while window with within without work wrapped write year zone
""".split()
)
