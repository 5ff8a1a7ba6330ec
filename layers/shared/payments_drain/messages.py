"""Pure core, step 1: an SQS record becomes a Payment or a Rejection with a specific reason.

The body contract (DESIGN.md): ``{"paymentKey": "ch_123", "properties": {...}, "associations": [...]}``.
Pydantic checks the shape; the rules below it check what HubSpot would refuse that we can know
locally (HUBSPOT.md), so no request is spent on a payment we know is invalid. Properties that do
not start with ``hs_`` may be the account's own custom properties: HubSpot decides those.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError

from payments_drain.outcomes import Message, Payment, Reason, Rejection

INVALID_MESSAGE = "INVALID_MESSAGE"
MAX_PROPERTY_CHARS = 65_536
MAX_KEY_CHARS = 255
INT32 = (-(2**31), 2**31 - 1)

REQUIRED = ("hs_initial_amount", "hs_initiated_date")
AMOUNTS = frozenset({"hs_initial_amount", "hs_fees_amount", "hs_refunds_amount", "hs_line_item_discounts_amount"})
DATES = frozenset({"hs_initiated_date", "hs_payout_date"})
OPTIONS: dict[str, frozenset[str]] = {
    "hs_latest_status": frozenset({
        "processing", "succeeded", "failed", "partially_refunded", "refunded", "processing_refund",
        "disputed_needs_response", "disputed_under_review", "disputed_won", "disputed_lost",
    }),
    "hs_payment_method_type": frozenset({
        "card", "ach", "cash", "check", "wire_transfer", "other", "sepa", "bacs", "pads",
    }),
    "hs_processor_type": frozenset({"hs_payments", "byo_stripe", "none", "quickbooks", "xero"}),
}
WRITABLE = frozenset({
    "hs_currency_code", "hs_customer_email", "hs_internal_comment", "hs_payment_method_bank_or_issuer",
    "hs_payment_method_last_4", "hs_reference_number", "hs_shipping_ship_to_name",
}) | AMOUNTS | DATES | frozenset(OPTIONS)
WRITABLE_PREFIXES = ("hs_billing_address_", "hs_shipping_address_")
READ_ONLY = frozenset({"hs_payment_method", "hs_payment_id", "hs_payment_type", "hs_object_id",
                       "hs_createdate", "hs_lastmodifieddate"})
READ_ONLY_PREFIXES = ("hs_platform_fee",)
# Active ISO 4217 codes (currencies HubSpot can hold); the sandbox and HubSpot refuse others.
ISO_4217 = frozenset("""
AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP BYN BZD
CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD
GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT
LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR
NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD
SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VES VND VUV WST XAF XCD
XCG XOF XPF YER ZAR ZMW ZWG ZWL
""".split())
EPOCH_MILLIS = re.compile(r"\d{10,14}")
KEY_PATTERN = r"^[\x21-\x7e]+$"  # printable ASCII, no spaces: a DynamoDB key and a log-safe id


class _To(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: Annotated[StrictStr, Field(pattern=r"^\d{1,20}$")] | Annotated[StrictInt, Field(ge=0)]


class _AssociationType(BaseModel):
    model_config = ConfigDict(extra="forbid")
    associationCategory: Literal["HUBSPOT_DEFINED", "USER_DEFINED", "INTEGRATOR_DEFINED", "WORK"]
    associationTypeId: Annotated[StrictInt, Field(ge=INT32[0], le=INT32[1])]


class _Association(BaseModel):
    model_config = ConfigDict(extra="forbid")
    to: _To
    types: Annotated[list[_AssociationType], Field(min_length=1)]


class PaymentBody(BaseModel):
    """The message contract; unknown top-level fields are refused so typos do not pass silently."""

    model_config = ConfigDict(extra="forbid")
    paymentKey: Annotated[StrictStr, Field(min_length=1, max_length=MAX_KEY_CHARS, pattern=KEY_PATTERN)] | None = None
    properties: dict[StrictStr, StrictStr]
    associations: list[_Association] = []
    version: Annotated[StrictInt, Field(ge=0, le=2**63 - 1)] | None = None  # grows with each change of the payment


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
    )


def parse_record(record: dict[str, Any], unique_property: str | None = None, upsert: bool = False) -> Payment | Rejection:
    """One SQS record to a Payment, or a Rejection saying which field is wrong and how."""
    message = message_of(record)
    try:
        body = PaymentBody.model_validate_json(message.body)
    except ValidationError as error:
        return _rejection(message, *_describe(error))
    except (RecursionError, ValueError) as error:  # pathological nesting beyond the parser's guard
        return _rejection(message, f"body is not valid JSON: {type(error).__name__}", "INVALID_JSON")
    payment_key = body.paymentKey or message.message_id
    if upsert and body.associations:
        return _rejection(message, "associations cannot be written by batch/upsert (HUBSPOT_WRITE_MODE=upsert): "
                          "send them with create mode or HubSpot's associations API", "ASSOCIATIONS_IN_UPSERT", payment_key)
    try:
        check_properties(body.properties, payment_key, unique_property)
    except InvalidPayment as error:
        return _rejection(message, str(error), error.code, payment_key)
    properties = dict(body.properties)
    if unique_property:
        properties[unique_property] = payment_key
    associations = [a.model_dump() for a in body.associations]
    for association in associations:
        association["to"]["id"] = str(association["to"]["id"])
    return Payment(message, payment_key, properties, associations, body.version)


def check_properties(properties: dict[str, str], payment_key: str, unique_property: str | None) -> None:
    for name in REQUIRED:
        if name not in properties:
            raise InvalidPayment(f"properties.{name} is required", "REQUIRED_PROPERTY")
    for name, value in properties.items():
        _check_property(name, value, payment_key, unique_property)


def _check_property(name: str, value: str, payment_key: str, unique_property: str | None) -> None:
    where = f"properties.{name}"
    if len(value) > MAX_PROPERTY_CHARS:
        raise InvalidPayment(f"{where} is {len(value)} characters, more than {MAX_PROPERTY_CHARS}", "VALUE_TOO_LONG")
    if name == unique_property:
        if value != payment_key:
            raise InvalidPayment(f"{where} is set by the drain from paymentKey and must equal it", "UNIQUE_PROPERTY_MISMATCH")
        return
    if name in READ_ONLY or name.startswith(READ_ONLY_PREFIXES):
        raise InvalidPayment(f"{where} is read-only in HubSpot", "READ_ONLY_VALUE")
    if name.startswith("hs_") and name not in WRITABLE and not name.startswith(WRITABLE_PREFIXES):
        raise InvalidPayment(f"{where} is not a commerce_payments property", "PROPERTY_DOESNT_EXIST")
    if name in AMOUNTS and not _is_number(value):
        raise InvalidPayment(f"{where} must be a decimal number as a string", "INVALID_DECIMAL")
    if name in DATES and not _is_date(value):
        raise InvalidPayment(f"{where} must be an ISO 8601 date-time or epoch milliseconds", "INVALID_DATE")
    if name in OPTIONS and value not in OPTIONS[name]:
        raise InvalidPayment(f"{where} is not one of its allowed options", "INVALID_OPTION")
    if name == "hs_currency_code" and value not in ISO_4217:
        raise InvalidPayment(f"{where} must be a three-letter ISO 4217 currency code", "INVALID_CURRENCY")


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


def _describe(error: ValidationError) -> tuple[str, str]:
    """The first problem, as `where: what` without echoing the value (it may be customer data)."""
    first = error.errors(include_url=False, include_input=False)[0]
    if first["type"] == "json_invalid":
        return "body is not valid JSON", "INVALID_JSON"
    if first["type"] == "model_type":
        return "body must be a JSON object", "INVALID_BODY"
    where = ".".join(str(part) for part in first["loc"]) or "body"
    more = f" (and {error.error_count() - 1} more)" if error.error_count() > 1 else ""
    return f"{where}: {first['msg']}{more}", first["type"].upper()


def _rejection(message: Message, text: str, code: str, payment_key: str | None = None) -> Rejection:
    try:
        payment: Any = json.loads(message.body)
    except (ValueError, RecursionError):
        payment = message.body
    if payment_key is None and isinstance(payment, dict) and isinstance(payment.get("paymentKey"), str):
        payment_key = payment["paymentKey"]
    return Rejection(message, Reason(INVALID_MESSAGE, text, code=code), payment_key or message.message_id, payment)
