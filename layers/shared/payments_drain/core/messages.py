"""Pure core, step 1: an SQS record becomes a Payment or a Rejection with a specific reason.

The body contract (docs/messages.md): ``{"paymentKey": "ch_123", "properties": {...}, "associations": [...]}``,
sent to the queue as is, or wrapped by the channel it came through, message by message (a batch may
mix them): an SNS notification (a topic subscribed by the queue without raw delivery: the payment is
the JSON text in ``Message``) or an EventBridge event (a rule targeting the queue: the payment is
``detail``). Powertools Parser's models read the wrappers. The payment contract forbids unknown
top-level fields, so a payment can never be mistaken for a wrapper, nor a wrapper for a payment.
Pydantic checks the shape; the rules below it check what HubSpot would refuse that we can know
locally (docs/hubspot.md), so no request is spent on a payment we know is invalid. Properties that
do not start with ``hs_`` may be the account's own custom properties: HubSpot decides those.
Property values may be JSON numbers (HubSpot stores them as strings, and so do we, before sending).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal, TypeVar

from aws_lambda_powertools.utilities.parser.models import EventBridgeModel, SnsNotificationModel
from pydantic import (
    AfterValidator,
    AllowInfNan,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    StrictStr,
    TypeAdapter,
    ValidationError,
    with_config,
)
from pydantic_core import from_json
from typing_extensions import NotRequired, TypedDict  # pydantic needs typing_extensions' on Python < 3.12

from payments_drain.core.links import OBJECT_TYPE_PATTERN, target_type
from payments_drain.core.outcomes import Message, Payment, Reason, Rejection

INVALID_MESSAGE = "INVALID_MESSAGE"
ASSOCIATION_TARGET_UNKNOWN = "ASSOCIATION_TARGET_UNKNOWN"
MAX_PROPERTY_CHARS = 65_536
MAX_KEY_CHARS = 255
INT32 = (-(2**31), 2**31 - 1)

REQUIRED = ("hs_initial_amount", "hs_initiated_date")
AMOUNTS = frozenset(
    {"hs_initial_amount", "hs_fees_amount", "hs_refunds_amount", "hs_line_item_discounts_amount"}
)
DATES = frozenset({"hs_initiated_date", "hs_payout_date"})
OPTIONS: dict[str, frozenset[str]] = {
    "hs_latest_status": frozenset(
        {
            "processing",
            "succeeded",
            "failed",
            "partially_refunded",
            "refunded",
            "processing_refund",
            "disputed_needs_response",
            "disputed_under_review",
            "disputed_won",
            "disputed_lost",
        }
    ),
    "hs_payment_method_type": frozenset(
        {
            "card",
            "ach",
            "cash",
            "check",
            "wire_transfer",
            "other",
            "sepa",
            "bacs",
            "pads",
        }
    ),
    "hs_processor_type": frozenset({"hs_payments", "byo_stripe", "none", "quickbooks", "xero"}),
}
WRITABLE = (
    frozenset(
        {
            "hs_currency_code",
            "hs_customer_email",
            "hs_internal_comment",
            "hs_payment_method_bank_or_issuer",
            "hs_payment_method_last_4",
            "hs_reference_number",
            "hs_shipping_ship_to_name",
        }
    )
    | AMOUNTS
    | DATES
    | frozenset(OPTIONS)
)
WRITABLE_PREFIXES = ("hs_billing_address_", "hs_shipping_address_")
READ_ONLY = frozenset(
    {
        "hs_payment_method",
        "hs_payment_id",
        "hs_payment_type",
        "hs_object_id",
        "hs_createdate",
        "hs_lastmodifieddate",
    }
)
READ_ONLY_PREFIXES = ("hs_platform_fee",)
# Active ISO 4217 codes (currencies HubSpot can hold); the sandbox and HubSpot refuse others.
ISO_4217 = frozenset(
    """
AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP BYN BZD
CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD
GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT
LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR
NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD
SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VES VND VUV WST XAF XCD
XCG XOF XPF YER ZAR ZMW ZWG ZWL
""".split()
)
EPOCH_MILLIS = re.compile(r"\d{10,14}")
KEY_PATTERN = r"^[\x21-\x7e]+$"  # printable ASCII, no spaces: a DynamoDB key and a log-safe id
# pydantic_core's cache of the strings it reads, for a body's keys only: values repeat far less
# than the contract's field and property names, and caching them too costs more than it saves
# (1.3 against 1.7 µs per body: docs/performance.md, figure a). The texts are the same either way.
BODY_STRINGS_CACHED = "keys"


# The contract as pydantic TypedDicts behind one TypeAdapter: validation yields plain dicts, ready to
# send (HubSpot ids as strings, numbers as the text HubSpot stores), with no model instance per
# association to build and dump again (about 2 µs per payment instead of 8 with BaseModels and
# model_dump: docs/performance.md, figure a).
FORBID_EXTRA = ConfigDict(extra="forbid")


@with_config(FORBID_EXTRA)
class _To(TypedDict):
    id: (
        Annotated[StrictStr, Field(pattern=r"^\d{1,20}$")]
        | Annotated[StrictInt, Field(ge=0), AfterValidator(str)]
    )


@with_config(FORBID_EXTRA)
class _AssociationType(TypedDict):
    associationCategory: Literal["HUBSPOT_DEFINED", "USER_DEFINED", "INTEGRATOR_DEFINED", "WORK"]
    associationTypeId: Annotated[StrictInt, Field(ge=INT32[0], le=INT32[1])]


@with_config(FORBID_EXTRA)
class _Association(TypedDict):
    to: _To
    types: Annotated[list[_AssociationType], Field(min_length=1)]
    # The drain's own, optional: the object type ``to`` names (``links``). Upsert mode writes links
    # through the associations API, whose path names it; HubSpot's default type ids name it already.
    toObjectType: NotRequired[Annotated[StrictStr, Field(pattern=OBJECT_TYPE_PATTERN)] | None]


def as_text(value: str | int | float) -> str:
    """A property value as HubSpot stores it: a string. Numbers in plain notation, ints exactly."""
    if isinstance(value, str):
        return value
    if isinstance(value, int):  # the JSON parser refuses more digits than str() converts
        return str(value)
    # repr: the shortest text that reads back as the same double; Decimal: without an exponent.
    return format(Decimal(repr(value)), "f")


# A JSON number: an integer (exact, any size) or a finite float (an IEEE double, as most JSON
# parsers read it: more than 15 significant digits are not kept; send such amounts as strings),
# validated into the text HubSpot stores.
Number = Annotated[StrictInt | Annotated[StrictFloat, AllowInfNan(False)], AfterValidator(as_text)]


@with_config(FORBID_EXTRA)
class PaymentBody(TypedDict):
    """The message contract; unknown top-level fields are refused so typos do not pass silently."""

    paymentKey: NotRequired[
        Annotated[StrictStr, Field(min_length=1, max_length=MAX_KEY_CHARS, pattern=KEY_PATTERN)] | None
    ]
    properties: dict[StrictStr, StrictStr | Number]
    associations: NotRequired[list[_Association]]
    version: NotRequired[Annotated[StrictInt, Field(ge=0, le=2**63 - 1)] | None]  # grows with each change


PAYMENT_BODY = TypeAdapter(PaymentBody)
# Its core validator, called directly: TypeAdapter.validate_python only hands its defaults on to
# it, ~0.3 µs per payment (docs/performance.md, figure a).
validate_body = PAYMENT_BODY.validator.validate_python


class InvalidPayment(ValueError):
    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


def message_of(record: dict[str, Any]) -> Message:
    attributes = record.get("attributes") or {}
    try:
        receive_count = int(attributes.get("ApproximateReceiveCount", 1))
    except (TypeError, ValueError):
        receive_count = 1
    body = record.get("body")
    return Message(
        message_id=str(record["messageId"]),
        body=body if isinstance(body, str) else json.dumps(body),
        receive_count=receive_count,
        group_id=attributes.get("MessageGroupId"),
        receipt_handle=record.get("receiptHandle"),
        sent_ms=_epoch_ms(attributes.get("SentTimestamp")),
        first_receive_ms=_epoch_ms(attributes.get("ApproximateFirstReceiveTimestamp")),
    )


def _epoch_ms(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def parse_record(
    record: dict[str, Any], unique_property: str | None = None, upsert: bool = False
) -> Payment | Rejection:
    """One SQS record to a Payment, or a Rejection saying which field is wrong and how."""
    message = message_of(record)
    try:
        body = from_json(message.body, allow_inf_nan=False, cache_strings=BODY_STRINGS_CACHED)
    except (RecursionError, ValueError) as error:  # RecursionError: nesting beyond the parser's guard
        return _rejection(message, f"body is not valid JSON: {type(error).__name__}", "INVALID_JSON")
    except TypeError:  # the parser's answer to a str it cannot encode: a lone surrogate (not from SQS)
        return _rejection(message, "body is not valid JSON: it holds a lone surrogate", "INVALID_JSON")
    try:
        channel, payment, channel_key = unwrap(body)
    except InvalidPayment as error:
        return _rejection(message, str(error), error.code)
    try:
        parsed = validate_body(payment)
    except ValidationError as error:
        text, code = _describe(error, channel)
        key = payment.get("paymentKey") if isinstance(payment, dict) else None
        return _rejection(message, text, code, key if isinstance(key, str) else channel_key)
    payment_key = parsed.get("paymentKey") or channel_key or message.message_id
    associations = parsed.get("associations") or []
    for i, association in enumerate(associations):
        if "toObjectType" in association and association["toObjectType"] is None:
            del association["toObjectType"]  # null says nothing: as if absent
        if upsert and target_type(association) is None:
            return _rejection(
                message,
                f"{channel.where}associations.{i}: the type names no object type the drain knows; in upsert "
                "mode links are written through HubSpot's associations API, which needs one: add "
                'toObjectType (e.g. "contacts")',
                ASSOCIATION_TARGET_UNKNOWN,
                payment_key,
            )
    properties = parsed["properties"]  # a new dict of texts (validation converts the numbers)
    try:
        check_properties(properties, payment_key, unique_property)
    except InvalidPayment as error:
        return _rejection(message, f"{channel.where}{error}", error.code, payment_key)
    if unique_property:
        properties[unique_property] = payment_key
    return Payment(message, payment_key, properties, associations, parsed.get("version"))


@dataclass(frozen=True, slots=True)
class Channel:
    """How a payment reached the queue: ``where`` prefixes the field names in a rejection."""

    label: str  # what holds the payment
    where: str


DIRECT = Channel("body", "")
SNS = Channel("the SNS Message", "Message.")
EVENTBRIDGE = Channel("the EventBridge detail", "detail.")
SNS_OTHER_TYPES = frozenset({"SubscriptionConfirmation", "UnsubscribeConfirmation"})


def unwrap(body: Any) -> tuple[Channel, Any, str | None]:
    """The payment inside one body, by the body's own shape: (channel, payment, the channel's id
    for the message). The channel's id (SNS MessageId, EventBridge event id) is the same on every
    copy that channel delivers, so it is the key of a payment without ``paymentKey``."""
    if not isinstance(body, dict):
        return DIRECT, body, None
    if "TopicArn" in body and body.get("Type") in SNS_OTHER_TYPES:
        raise InvalidPayment(
            f"an SNS {body['Type']} message, not a payment: to confirm the subscription, open "
            "its SubscribeURL (in this report's payment)",
            "SNS_SUBSCRIPTION_MESSAGE",
        )
    if "TopicArn" in body and body.get("Type") == "Notification":
        notification = _envelope(SnsNotificationModel, body, "SNS notification", "INVALID_SNS_NOTIFICATION")
        if not isinstance(notification.Message, str):
            raise InvalidPayment("SNS notification: Message must be a string", "INVALID_SNS_NOTIFICATION")
        try:
            payment = from_json(notification.Message, allow_inf_nan=False, cache_strings=BODY_STRINGS_CACHED)
        except (RecursionError, ValueError) as error:
            raise InvalidPayment(
                f"SNS Message is not valid JSON: {type(error).__name__}", "INVALID_JSON"
            ) from None
        return SNS, payment, _key_or_none(notification.MessageId)
    if "detail-type" in body and "detail" in body:
        event = _envelope(EventBridgeModel, body, "EventBridge event", "INVALID_EVENTBRIDGE_EVENT")
        return EVENTBRIDGE, event.detail, _key_or_none(event.id)
    return DIRECT, body, None


EnvelopeModel = TypeVar("EnvelopeModel", SnsNotificationModel, EventBridgeModel)


def _envelope(model: type[EnvelopeModel], body: dict[str, Any], label: str, code: str) -> EnvelopeModel:
    """``body`` as the channel's Powertools model, or an InvalidPayment naming the wrong field."""
    try:
        return model.model_validate(body)
    except ValidationError as error:
        raise InvalidPayment(f"{label}: {_describe(error)[0]}", code) from None


def _key_or_none(value: str) -> str | None:
    return value if 0 < len(value) <= MAX_KEY_CHARS and re.fullmatch(KEY_PATTERN, value) else None


def check_properties(properties: dict[str, str], payment_key: str, unique_property: str | None) -> None:
    """The first property HubSpot would refuse, in the body's order, raised as an InvalidPayment."""
    for name in REQUIRED:
        if name not in properties:
            raise InvalidPayment(f"properties.{name} is required", "REQUIRED_PROPERTY")
    for name, value in properties.items():
        if len(value) > MAX_PROPERTY_CHARS:
            raise InvalidPayment(
                f"properties.{name} is {len(value)} characters, more than {MAX_PROPERTY_CHARS}",
                "VALUE_TOO_LONG",
            )
        if name == unique_property:
            if value != payment_key:
                raise InvalidPayment(
                    f"properties.{name} is set by the drain from paymentKey and must equal it",
                    "UNIQUE_PROPERTY_MISMATCH",
                )
        elif name in WRITABLE:  # neither read-only nor unknown: only its value can be wrong
            rule = VALUE_RULES.get(name)
            if rule is not None and not rule[0](value):
                raise InvalidPayment(f"properties.{name} {rule[1]}", rule[2])
        elif name in READ_ONLY or name.startswith(READ_ONLY_PREFIXES):
            raise InvalidPayment(f"properties.{name} is read-only in HubSpot", "READ_ONLY_VALUE")
        elif name.startswith("hs_") and not name.startswith(WRITABLE_PREFIXES):
            raise InvalidPayment(
                f"properties.{name} is not a commerce_payments property", "PROPERTY_DOESNT_EXIST"
            )


def _is_number(value: str) -> bool:
    try:
        return Decimal(value).is_finite()
    except InvalidOperation:
        return False


def _is_date(value: str) -> bool:
    if EPOCH_MILLIS.fullmatch(value):
        return True
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


# The value rule of each writable property that has one (the sets are disjoint): (accepts, what
# it must be, reason code). A writable property is neither read-only nor unknown to HubSpot.
VALUE_RULES: dict[str, tuple[Callable[[str], bool], str, str]] = {
    **dict.fromkeys(AMOUNTS, (_is_number, "must be a decimal number as a string", "INVALID_DECIMAL")),
    **dict.fromkeys(DATES, (_is_date, "must be an ISO 8601 date-time or epoch milliseconds", "INVALID_DATE")),
    **{
        name: (options.__contains__, "is not one of its allowed options", "INVALID_OPTION")
        for name, options in OPTIONS.items()
    },
    "hs_currency_code": (
        ISO_4217.__contains__,
        "must be a three-letter ISO 4217 currency code",
        "INVALID_CURRENCY",
    ),
}


def _describe(error: ValidationError, channel: Channel = DIRECT) -> tuple[str, str]:
    """The first problem, as `where: what` without echoing the value (it may be customer data)."""
    first = error.errors(include_url=False, include_input=False)[0]
    if not first["loc"] and first["type"] in ("model_type", "dict_type"):  # the payment itself
        return f"{channel.label} must be a JSON object", "INVALID_BODY"
    if len(first["loc"]) == 3 and first["loc"][0] == "properties":  # a value that no member of the union took
        return (
            f"{channel.where}properties.{first['loc'][1]} must be a string or a finite number",
            "INVALID_PROPERTY_VALUE",
        )
    where = channel.where + ".".join(str(part) for part in first["loc"]) or channel.label
    more = f" (and {error.error_count() - 1} more)" if error.error_count() > 1 else ""
    return f"{where}: {first['msg']}{more}", first["type"].upper()


def _rejection(message: Message, text: str, code: str, payment_key: str | None = None) -> Rejection:
    try:
        payment: Any = json.loads(message.body)
    except (ValueError, RecursionError):
        payment = message.body
    if payment_key is None and isinstance(payment, dict) and isinstance(payment.get("paymentKey"), str):
        payment_key = payment["paymentKey"]
    return Rejection(
        message, Reason(INVALID_MESSAGE, text, code=code), payment_key or message.message_id, payment
    )
