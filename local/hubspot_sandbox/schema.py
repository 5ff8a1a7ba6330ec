"""The commerce_payments property schema and per-input validation, as HubSpot does it (docs/hubspot.md).

Pure functions; no I/O, no state. ``validate_input`` returns a list of problems for one input, each a
dict ``{"code", "message", "in"}`` that the server turns into HubSpot-shaped error bodies.
"""

from __future__ import annotations

import json
import math
import re
from datetime import datetime
from typing import Any

MAX_INPUTS = 100
MAX_STRING_LENGTH = 65_536
REQUIRED = ("hs_initial_amount", "hs_initiated_date")

NUMBER_PROPERTIES = frozenset(
    {"hs_initial_amount", "hs_fees_amount", "hs_refunds_amount", "hs_line_item_discounts_amount"}
)
DATE_PROPERTIES = frozenset({"hs_initiated_date", "hs_payout_date"})

ENUMERATIONS: dict[str, frozenset[str]] = {
    "hs_latest_status": frozenset(
        {
            "processing",
            "succeeded",
            "failed",
            "partially_refunded",
            "refunded",
            "processing_refund",
            # HubSpot lists "disputed_*" (docs/hubspot.md); these are the values we accept for it.
            "disputed_needs_response",
            "disputed_under_review",
            "disputed_won",
            "disputed_lost",
        }
    ),
    "hs_payment_method_type": frozenset(
        {"card", "ach", "cash", "check", "wire_transfer", "other", "sepa", "bacs", "pads"}
    ),
    "hs_processor_type": frozenset({"hs_payments", "byo_stripe", "none", "quickbooks", "xero"}),
}

# Active ISO 4217 codes (test and "no currency" codes XTS/XXX excluded).
ISO_4217 = frozenset(
    """AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL BSD BTN BWP
    BYN BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR
    FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS
    KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN
    MXV MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR
    SDG SEK SGD SHP SLE SLL SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD
    USN UYI UYU UYW UZS VED VES VND VUV WST XAF XAG XAU XBA XBB XBC XBD XCD XCG XDR XOF XPD XPF XPT XSU
    XUA YER ZAR ZMW ZWG ZWL""".split()
)

WRITABLE = frozenset(
    {
        "hs_currency_code",
        "hs_customer_email",
        "hs_fees_amount",
        "hs_initial_amount",
        "hs_initiated_date",
        "hs_internal_comment",
        "hs_latest_status",
        "hs_payment_method_bank_or_issuer",
        "hs_payment_method_last_4",
        "hs_payment_method_type",
        "hs_payout_date",
        "hs_processor_type",
        "hs_reference_number",
        "hs_refunds_amount",
        "hs_line_item_discounts_amount",
        "hs_shipping_ship_to_name",
    }
)
ADDRESS_SUFFIXES = ("line_1", "line_2", "city", "state", "zip", "postal_code", "country", "name")
WRITABLE_PREFIXED = frozenset(
    f"{prefix}{suffix}"
    for prefix in ("hs_billing_address_", "hs_shipping_address_")
    for suffix in ADDRESS_SUFFIXES
)

READ_ONLY = frozenset(
    {
        "hs_payment_method",
        "hs_payment_id",
        "hs_payment_type",
        "hs_object_id",
        "hs_createdate",
        "hs_lastmodifieddate",
        "hs_created_by_user_id",
        "hs_updated_by_user_id",
        "hs_object_source",
        "hs_merged_object_ids",
    }
)
READ_ONLY_PREFIXES = ("hs_platform_fee",)

ASSOCIATION_CATEGORIES = frozenset({"HUBSPOT_DEFINED", "USER_DEFINED", "INTEGRATOR_DEFINED", "WORK"})
# HubSpot's default (HUBSPOT_DEFINED) association type from a payment to each object type, and the
# type ids HubSpot's objects have (docs/hubspot.md).
PAYMENT_DEFAULT_TYPES = {
    "contacts": 387,
    "companies": 389,
    "deals": 391,
    "subscriptions": 393,
    "line_items": 395,
    "quotes": 397,
    "discounts": 428,
    "orders": 524,
    "invoices": 542,
    "tickets": 1354,
}
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1

_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_EPOCH_MS = re.compile(r"^-?\d{1,15}$")
_NUMERIC_ID = re.compile(r"^\d{1,19}$")


def is_numeric_id(value: str) -> bool:
    return bool(_NUMERIC_ID.match(value))


def is_read_only(name: str) -> bool:
    return name in READ_ONLY or name.startswith(READ_ONLY_PREFIXES)


def is_writable(name: str, extra: frozenset[str]) -> bool:
    return name in WRITABLE or name in WRITABLE_PREFIXED or name in extra


def _valid_date(value: str) -> bool:
    if _EPOCH_MS.match(value):
        return True
    try:
        datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value)
    except ValueError:
        return False
    return True


def is_value(value: Any) -> bool:
    """HubSpot takes strings and JSON numbers as property values (it stores numbers as strings);
    booleans, objects, lists and null are refused."""
    if isinstance(value, bool):
        return False
    return isinstance(value, (str, int)) or (isinstance(value, float) and math.isfinite(value))


def stored_text(value: str | int | float) -> str:
    """The string HubSpot stores for a value: a number's JSON text."""
    return value if isinstance(value, str) else json.dumps(value)


def stored_properties(properties: dict[str, Any]) -> dict[str, str]:
    return {name: stored_text(value) for name, value in properties.items()}


def held(properties: dict[str, str]) -> dict[str, str]:
    """What a record holds after a write: a property given an empty string has no value, on create
    and on update alike (HubSpot: "Properties values can be cleared by passing an empty string";
    docs/hubspot.md, batch read), so it reads back as null (asked for) or not at all."""
    return {name: value for name, value in properties.items() if value != ""}


#: What GET /crm/v3/properties/commerce_payments/{name} answers for HubSpot's own properties: type only.
def built_in_definition(name: str) -> dict[str, Any] | None:
    if not (name in WRITABLE or name in WRITABLE_PREFIXED or is_read_only(name)):
        return None
    if name in NUMBER_PROPERTIES:
        kind, field = "number", "number"
    elif name in DATE_PROPERTIES:
        kind, field = "datetime", "date"
    elif name in ENUMERATIONS:
        kind, field = "enumeration", "select"
    else:
        kind, field = "string", "text"
    return {
        "name": name,
        "label": name,
        "type": kind,
        "fieldType": field,
        "groupName": "paymentinformation",
        "description": "",
        "hasUniqueValue": False,
        "hidden": False,
        "formField": False,
        "displayOrder": -1,
        "calculated": False,
        "externalOptions": False,
        "archived": False,
        "options": [
            {"label": o, "value": o, "displayOrder": -1, "hidden": False}
            for o in sorted(ENUMERATIONS.get(name, ()))
        ],
        "modificationMetadata": {
            "archivable": False,
            "readOnlyDefinition": True,
            "readOnlyValue": is_read_only(name),
        },
    }


PROPERTY_NAME = re.compile(r"^[a-z][a-z0-9_]{0,99}$")
PROPERTY_TYPES = {
    "string": {"text", "textarea", "html", "file"},
    "number": {"number", "calculation_equation"},
    "date": {"date"},
    "datetime": {"date"},
    "enumeration": {"select", "radio", "checkbox", "booleancheckbox"},
    "bool": {"booleancheckbox"},
    "phone_number": {"phonenumber"},
}


def validate_property_create(body: Any) -> list[dict[str, str]]:
    """Problems with a POST /crm/v3/properties/{objectType} body (empty list: valid)."""
    if not isinstance(body, dict):
        return [problem("INVALID_INPUT", "the body must be a property definition object", "body")]
    problems = []
    name, label = body.get("name"), body.get("label")
    if not isinstance(name, str) or not PROPERTY_NAME.match(name):
        problems.append(
            problem(
                "INVALID_PROPERTY_NAME",
                "name must be lower case letters, digits and underscores, "
                "starting with a letter, at most 100 characters",
                "name",
            )
        )
    elif name.startswith("hs_"):
        problems.append(
            problem("INVALID_PROPERTY_NAME", "names starting with hs_ are reserved for HubSpot", "name")
        )
    if not isinstance(label, str) or not label.strip():
        problems.append(problem("INVALID_INPUT", "label is required", "label"))
    kind, field = body.get("type"), body.get("fieldType")
    if kind not in PROPERTY_TYPES:
        problems.append(problem("INVALID_INPUT", f"type must be one of {sorted(PROPERTY_TYPES)}", "type"))
    elif field not in PROPERTY_TYPES[kind]:
        problems.append(
            problem(
                "INVALID_INPUT",
                f"fieldType must be one of {sorted(PROPERTY_TYPES[kind])} for {kind}",
                "fieldType",
            )
        )
    if not isinstance(body.get("groupName"), str) or not body["groupName"]:
        problems.append(problem("INVALID_INPUT", "groupName is required", "groupName"))
    unique = body.get("hasUniqueValue", False)
    if not isinstance(unique, bool):
        problems.append(problem("INVALID_INPUT", "hasUniqueValue must be a boolean", "hasUniqueValue"))
    elif unique and kind not in ("string", "number"):
        problems.append(
            problem(
                "INVALID_INPUT", "only string and number properties can have unique values", "hasUniqueValue"
            )
        )
    return problems


def problem(code: str, message: str, where: str) -> dict[str, str]:
    return {"code": code, "message": message, "in": where}


def validate_properties(
    properties: Any, extra: frozenset[str], *, require: bool = True
) -> list[dict[str, str]]:
    if not isinstance(properties, dict):
        return [
            problem(
                "INVALID_INPUT", "properties must be an object of property name to string value", "properties"
            )
        ]
    problems: list[dict[str, str]] = []
    for name, value in properties.items():
        if is_read_only(name):
            problems.append(problem("READ_ONLY_VALUE", f'Property "{name}" is a read only property', name))
            continue
        if not is_writable(name, extra):
            problems.append(problem("PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist', name))
            continue
        if not is_value(value):
            problems.append(
                problem(
                    "INVALID_PROPERTY_VALUE_TYPE",
                    f'Property "{name}" must be a string or a number, got {json.dumps(value)[:80]}',
                    name,
                )
            )
            continue
        value = stored_text(value)
        if len(value) > MAX_STRING_LENGTH:
            problems.append(
                problem(
                    "INVALID_STRING_LENGTH",
                    f'Property "{name}" is longer than {MAX_STRING_LENGTH} characters',
                    name,
                )
            )
            continue
        if value == "" and name not in REQUIRED:
            continue  # an empty string clears an optional property
        if name in NUMBER_PROPERTIES and not _NUMBER.match(value):
            problems.append(
                problem("INVALID_DECIMAL", f'"{value[:80]}" is not a valid number for "{name}"', name)
            )
        elif name in DATE_PROPERTIES and not _valid_date(value):
            problems.append(
                problem(
                    "INVALID_DATE",
                    f'"{value[:80]}" is not a valid date (ISO 8601 or epoch millis) for "{name}"',
                    name,
                )
            )
        elif name in ENUMERATIONS and value not in ENUMERATIONS[name]:
            allowed = ", ".join(sorted(ENUMERATIONS[name]))
            problems.append(
                problem(
                    "INVALID_OPTION", f"{value[:80]} was not one of the allowed options: [{allowed}]", name
                )
            )
        elif name == "hs_currency_code" and value not in ISO_4217:
            problems.append(
                problem(
                    "INVALID_OPTION",
                    f"{value[:80]} was not one of the allowed options: ISO 4217 currency codes",
                    name,
                )
            )
    if require:
        problems += missing_required(properties)
    return problems


def missing_required(properties: dict[str, Any]) -> list[dict[str, str]]:
    problems: list[dict[str, str]] = []
    for name in REQUIRED:
        if name not in properties:
            problems.append(problem("MISSING_REQUIRED_PROPERTY", f'Property "{name}" is required', name))
        elif properties[name] == "":
            problems.append(
                problem("MISSING_REQUIRED_PROPERTY", f'Property "{name}" is required and was empty', name)
            )
    return problems


def validate_associations(associations: Any) -> list[dict[str, str]]:
    if associations is None:
        return []
    if not isinstance(associations, list):
        return [problem("INVALID_ASSOCIATION", "associations must be a list", "associations")]
    problems: list[dict[str, str]] = []
    for i, assoc in enumerate(associations):
        where = f"associations[{i}]"
        if not isinstance(assoc, dict):
            problems.append(problem("INVALID_ASSOCIATION", f"{where} must be an object", where))
            continue
        to = assoc.get("to")
        to_id = to.get("id") if isinstance(to, dict) else None
        if isinstance(to_id, bool) or not (
            (isinstance(to_id, int) and to_id >= 0) or (isinstance(to_id, str) and _NUMERIC_ID.match(to_id))
        ):
            problems.append(
                problem("INVALID_ASSOCIATION", f"{where}.to.id must be a numeric object id", where)
            )
        types = assoc.get("types")
        if not isinstance(types, list) or not types:
            problems.append(problem("INVALID_ASSOCIATION", f"{where}.types must be a non-empty list", where))
            continue
        for j, spec in enumerate(types):
            twhere = f"{where}.types[{j}]"
            if not isinstance(spec, dict):
                problems.append(problem("INVALID_ASSOCIATION", f"{twhere} must be an object", twhere))
                continue
            category = spec.get("associationCategory")
            if category not in ASSOCIATION_CATEGORIES:
                problems.append(
                    problem(
                        "INVALID_ASSOCIATION_CATEGORY",
                        f"{twhere}.associationCategory {json.dumps(category)} is not one of "
                        f"{sorted(ASSOCIATION_CATEGORIES)}",
                        twhere,
                    )
                )
            type_id = spec.get("associationTypeId")
            if (
                isinstance(type_id, bool)
                or not isinstance(type_id, int)
                or not INT32_MIN <= type_id <= INT32_MAX
            ):
                problems.append(
                    problem(
                        "INVALID_ASSOCIATION_TYPE_ID",
                        f"{twhere}.associationTypeId {json.dumps(type_id)} is not an int32",
                        twhere,
                    )
                )
    return problems


def validate_input(item: Any, extra: frozenset[str], *, upsert: bool = False) -> list[dict[str, str]]:
    """Problems with one batch input (empty list: valid). Trace-id duplicates and unique-value
    conflicts are request-level and are checked by the server."""
    if not isinstance(item, dict):
        return [problem("INVALID_INPUT", "each input must be an object", "inputs")]
    properties = item.get("properties")
    # For an upsert the required properties are checked only when the input turns out to create.
    problems = validate_properties({} if properties is None else properties, extra, require=not upsert)
    if upsert:
        if not isinstance(item.get("id"), str) or not item["id"]:
            problems.append(problem("INVALID_INPUT", "id must be a non-empty string", "id"))
        if "associations" in item:
            problems.append(
                problem("INVALID_INPUT", "batch upsert does not take associations", "associations")
            )
    else:
        problems += validate_associations(item.get("associations"))
    tid = item.get("objectWriteTraceId")
    if tid is not None and not isinstance(tid, str):
        problems.append(problem("INVALID_INPUT", "objectWriteTraceId must be a string", "objectWriteTraceId"))
    return problems
