"""The documented limits of every outside system the drain talks to, and what happens past each.

One table, read by the product (holds, chunk sizes, request sizes), by the simulation
(``simulation/``: the rules its SQS, DynamoDB and HubSpot enforce) and by the tests (contract
tests cite the same rows). Every row names the document it comes from; docs/limits.md shows the
table to a reader (a test keeps the two the same). A value here is a fact about AWS or HubSpot,
never a setting of ours: our settings live in ``config``.

``past`` says what the outside system does when the limit is crossed:
- ``refused``: the call fails (an error the caller sees); nothing changes;
- ``throttled``: the call fails with a retryable error; trying later may succeed;
- ``dropped``: nothing fails, the data is deleted silently (the worst kind: only we can notice);
- ``redelivered``: the messages come back, whatever was done with them.
"""

from __future__ import annotations

from dataclasses import dataclass

REFUSED, THROTTLED, DROPPED, REDELIVERED = "refused", "throttled", "dropped", "redelivered"


@dataclass(frozen=True, slots=True)
class Limit:
    system: str
    what: str
    value: int
    unit: str
    past: str  # one of REFUSED, THROTTLED, DROPPED, REDELIVERED
    effect: str  # in words: what a caller sees past the limit
    source: str  # the AWS or HubSpot document it comes from


_SQS_QUOTAS = (
    "https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/quotas-messages.html"
)
_SQS_VISIBILITY = (
    "https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-visibility-timeout.html"
)
_SQS_CMV = (
    "https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_ChangeMessageVisibility.html"
)
_SQS_ATTRS = (
    "https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SetQueueAttributes.html"
)
_SQS_DLQ = (
    "https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-dead-letter-queues.html"
)
_DDB_LIMITS = "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ServiceQuotas.html"
_DDB_NAMES = (
    "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/HowItWorks.NamingRulesDataTypes.html"
)
_DDB_PARTITIONS = (
    "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/bp-partition-key-design.html"
)
_DDB_CONDITIONS = (
    "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/"
    "WorkingWithItems.html#WorkingWithItems.ConditionalUpdate"
)
_LAMBDA_LIMITS = "https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html"
_LAMBDA_SQS = "https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html"
_HS_LIMITS = "https://developers.hubspot.com/docs/guides/apps/api-usage/usage-details"
# The limits of privately distributed apps, which a service key has too (the service keys page).
_HS_USAGE = "https://developers.hubspot.com/docs/developer-tooling/platform/usage-guidelines"
_HS_SERVICE_KEYS = "https://developers.hubspot.com/docs/apps/developer-platform/build-apps/authentication/account-service-keys"
_HS_BATCH = "https://developers.hubspot.com/docs/api-reference/crm-commerce-payments-v3/batch/post-crm-v3-objects-commerce_payments-batch-create"
_HS_PROPERTIES = "https://developers.hubspot.com/docs/guides/api/crm/properties"
_HS_BATCH_READ = (
    "https://developers.hubspot.com/docs/api-reference/2026-03/crm/objects/objects/batch/get-objects"
)
_HS_ASSOCIATIONS_READ = (
    "https://developers.hubspot.com/changelog/bug-fix-batch-read-limit-for-hubspot-associations-api"
)

# -- SQS ---------------------------------------------------------------------------------------
SQS_MAX_VISIBILITY_S = Limit(
    "SQS",
    "a message's total visibility timeout per receive, counted from that receive",
    43_200,
    "s",
    REFUSED,
    "ChangeMessageVisibility past 12 h from the receive is refused (not shortened); the message "
    "keeps its old timeout and comes back when that ends",
    _SQS_CMV,
)
SQS_MAX_RETENTION_S = Limit(
    "SQS",
    "message retention (MessageRetentionPeriod), counted from SentTimestamp",
    1_209_600,
    "s",
    DROPPED,
    "a message older than the queue's retention is deleted, whether visible or held; it never "
    "reaches the dead-letter queue",
    _SQS_ATTRS,
)
SQS_DEFAULT_RETENTION_S = Limit(
    "SQS",
    "message retention when the queue does not set it",
    345_600,
    "s",
    DROPPED,
    "as above, after 4 days",
    _SQS_ATTRS,
)
SQS_DLQ_RETENTION = Limit(
    "SQS",
    "a standard queue's message in its dead-letter queue: retention still counted from the first send",
    1_209_600,
    "s (the dead-letter queue's own retention)",
    DROPPED,
    "a message dead-lettered late in its life is deleted early: the dead-letter queue's retention should "
    "be longer than the source queue's (a FIFO queue's message starts again)",
    "https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/"
    "setting-up-dead-letter-queue-retention.html",
)
SQS_BATCH_ENTRIES = Limit(
    "SQS",
    "entries per SendMessageBatch, DeleteMessageBatch, ChangeMessageVisibilityBatch",
    10,
    "entries",
    REFUSED,
    "the whole call is refused (TooManyEntriesInBatchRequest)",
    _SQS_QUOTAS,
)
SQS_MAX_MESSAGE_BYTES = Limit(
    "SQS",
    "size of one message, and of one batch call's messages together",
    1_048_576,
    "bytes",
    REFUSED,
    "the send is refused; a queue's MaximumMessageSize may set it lower (256 KiB was the default "
    "before January 2026)",
    _SQS_QUOTAS,
)
SQS_MAX_IN_FLIGHT = Limit(
    "SQS",
    "in-flight messages of a standard queue",
    120_000,
    "messages",
    REFUSED,
    "ReceiveMessage answers OverLimit: nothing more is delivered until some are deleted or visible",
    _SQS_QUOTAS,
)
SQS_REDRIVE = Limit(
    "SQS",
    "receives before redrive (the redrive policy's maxReceiveCount)",
    1,
    "receives (minimum)",
    REDELIVERED,
    "a message received maxReceiveCount times, then not deleted, moves to the dead-letter queue "
    "at its next receive",
    _SQS_DLQ,
)

# -- Lambda ------------------------------------------------------------------------------------
LAMBDA_MAX_TIMEOUT_S = Limit(
    "Lambda",
    "function timeout",
    900,
    "s",
    REDELIVERED,
    "the invocation is stopped; with an SQS event source every message of the batch comes back "
    "after its visibility timeout, whatever was done with it",
    _LAMBDA_LIMITS,
)
LAMBDA_SQS_BATCHING_WINDOW_S = Limit(
    "Lambda",
    "an SQS event source's batching window (MaximumBatchingWindowInSeconds)",
    300,
    "s",
    REFUSED,
    "the event source mapping is refused; messages wait in the window counted as in flight",
    _LAMBDA_SQS,
)
LAMBDA_SQS_SCALE_UP_PER_MIN = Limit(
    "Lambda",
    "concurrent invocations an SQS event source adds per minute (from five, up to MaximumConcurrency)",
    300,
    "invocations/min",
    THROTTLED,
    "no more are started that minute; the messages wait in the queue, visible",
    "https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html",
)
LAMBDA_UNZIPPED_PACKAGE_MB = Limit(
    "Lambda",
    "deployment package size unzipped, the function's code and all its layers together",
    250,
    "MB",
    REFUSED,
    "the deployment is refused (CreateFunction / UpdateFunctionCode fail): `make build` adds the "
    "bytecode, the test of it holds the built layer and function under this",
    _LAMBDA_LIMITS,
)

# -- DynamoDB ----------------------------------------------------------------------------------
#: A DynamoDB table name (``_DDB_NAMES``): 3 to 255 of a-z, A-Z, 0-9, '_', '-' and '.'. A pattern,
#: not a row of the table: config, the ledger and template.yaml's ExistingRateSlotsTableName read it.
DDB_TABLE_NAME = r"[a-zA-Z0-9_.\-]{3,255}"
DDB_BATCH_STATEMENTS = Limit(
    "DynamoDB",
    "statements per BatchExecuteStatement",
    25,
    "statements",
    REFUSED,
    "the request is refused (ValidationException)",
    _DDB_LIMITS,
)
DDB_BATCH_WRITE_ITEMS = Limit(
    "DynamoDB",
    "put or delete requests per BatchWriteItem",
    25,
    "items",
    REFUSED,
    "the request is refused (ValidationException); accepted ones may come back as UnprocessedItems",
    _DDB_LIMITS,
)
DDB_BATCH_GET_KEYS = Limit(
    "DynamoDB",
    "keys per BatchGetItem",
    100,
    "keys",
    REFUSED,
    "the request is refused (ValidationException); accepted ones may come back as UnprocessedKeys",
    _DDB_LIMITS,
)
DDB_EXPRESSION_BYTES = Limit(
    "DynamoDB",
    "length of one expression",
    4_096,
    "bytes",
    REFUSED,
    "the request is refused (ValidationException)",
    _DDB_LIMITS,
)
DDB_ITEM_WCU_PER_S = Limit(
    "DynamoDB",
    "writes to one item (partition) per second",
    1_000,
    "WCU/s",
    THROTTLED,
    "ProvisionedThroughputExceeded (also on demand); a refused conditional write still consumes write units",
    _DDB_PARTITIONS,
)
DDB_ITEM_RCU_PER_S = Limit(
    "DynamoDB",
    "strongly consistent reads of one item (partition) per second",
    3_000,
    "RCU/s",
    THROTTLED,
    "ProvisionedThroughputExceeded",
    _DDB_PARTITIONS,
)
DDB_CONDITIONAL_WRITE_COST = Limit(
    "DynamoDB",
    "a conditional write refused by its condition",
    1,
    "WCU (at least)",
    REFUSED,
    "ConditionalCheckFailedException, and the write units are consumed all the same",
    _DDB_CONDITIONS,
)

# -- HubSpot -----------------------------------------------------------------------------------
HUBSPOT_BATCH_INPUTS = Limit(
    "HubSpot",
    "inputs per batch create or upsert request",
    100,
    "inputs",
    REFUSED,
    "400 for the whole request: nothing is written",
    _HS_BATCH,
)
HUBSPOT_BATCH_READ_INPUTS = Limit(
    "HubSpot",
    "inputs per batch read (by record id, or by a unique property's values with idProperty)",
    100,
    "inputs",
    REFUSED,
    "400 for the whole request; an input not found is no failure: a 207 names it in an "
    "OBJECT_NOT_FOUND error (context.ids)",
    _HS_BATCH_READ,
)
HUBSPOT_ASSOCIATION_READ_INPUTS = Limit(
    "HubSpot",
    "inputs per associations batch read (the only input limit HubSpot documents for the associations "
    "batch calls; upsert mode's link calls, batch create, keep to the 100 of the CRM batch calls)",
    1_000,
    "inputs",
    REFUSED,
    "the whole request is rejected with an error",
    _HS_ASSOCIATIONS_READ,
)
HUBSPOT_WINDOW_MS = Limit(
    "HubSpot",
    "the rolling rate-limit window (X-HubSpot-RateLimit-Interval-Milliseconds)",
    10_000,
    "ms",
    THROTTLED,
    "429 RATE_LIMIT, policy TEN_SECONDLY_ROLLING; not written, not counted",
    _HS_LIMITS,
)
# Per credential: a service key (what a new account creates), a project-based app's static token
# and a legacy private app's token are privately distributed apps, with the same limits; the
# burst is per app (per key), the daily limit is shared by every app of the account.
HUBSPOT_PER_10S_PROFESSIONAL = Limit(
    "HubSpot",
    "requests per 10 s per service key, app static token or legacy private app: Professional and Enterprise",
    190,
    "requests",
    THROTTLED,
    "429 TEN_SECONDLY_ROLLING until requests leave the window",
    _HS_USAGE,
)
HUBSPOT_PER_10S_STARTER = Limit(
    "HubSpot",
    "requests per 10 s per service key, app static token or legacy private app: Free and Starter",
    100,
    "requests",
    THROTTLED,
    "429 TEN_SECONDLY_ROLLING",
    _HS_USAGE,
)
HUBSPOT_PER_10S_LIMIT_INCREASE = Limit(
    "HubSpot",
    "requests per 10 s per service key, app static token or legacy private app, with the API limit increase",
    250,
    "requests",
    THROTTLED,
    "429 TEN_SECONDLY_ROLLING (two increases do not raise it further)",
    _HS_USAGE,
)
HUBSPOT_PER_10S_PUBLIC_APP = Limit(
    "HubSpot",
    "requests per 10 s per public (marketplace) OAuth app, per installing account",
    110,
    "requests",
    THROTTLED,
    "429 TEN_SECONDLY_ROLLING",
    _HS_USAGE,
)
HUBSPOT_DAILY_STARTER = Limit(
    "HubSpot",
    "requests per day per account, Free and Starter (every privately distributed app of the account)",
    250_000,
    "requests",
    THROTTLED,
    "429 policy DAILY until midnight in the account's time zone",
    _HS_USAGE,
)
HUBSPOT_DAILY_PROFESSIONAL = Limit(
    "HubSpot",
    "requests per day per account, Professional",
    625_000,
    "requests",
    THROTTLED,
    "429 policy DAILY until midnight in the account's time zone",
    _HS_USAGE,
)
HUBSPOT_DAILY_ENTERPRISE = Limit(
    "HubSpot",
    "requests per day per account, Enterprise (each API limit increase adds 1,000,000)",
    1_000_000,
    "requests",
    THROTTLED,
    "429 policy DAILY until midnight in the account's time zone",
    _HS_USAGE,
)
HUBSPOT_SERVICE_KEY_ROTATION = Limit(
    "HubSpot",
    "a service key's old value after 'Rotate and expire later' (a service key is in public beta)",
    7,
    "days",
    REFUSED,
    "the old value is refused (401); the drain reads the secret again on a 401, so put the new "
    "value in the secret before then",
    _HS_SERVICE_KEYS,
)
HUBSPOT_ERROR_SHARE = Limit(
    "HubSpot",
    "error answers as a share of daily requests (HubSpot's guideline)",
    5,
    "%",
    THROTTLED,
    "HubSpot may restrict an app that errs more",
    _HS_LIMITS,
)
HUBSPOT_PROPERTY_CHARS = Limit(
    "HubSpot",
    "characters in one string property value",
    65_536,
    "characters",
    REFUSED,
    "400 VALIDATION_ERROR for that input",
    _HS_PROPERTIES,
)

LIMITS: tuple[Limit, ...] = tuple(v for k, v in dict(globals()).items() if isinstance(v, Limit))


def markdown_table() -> str:
    """The table as docs/limits.md shows it (a test keeps the page equal to this)."""
    rows = ["| system | limit | value | past it | what happens | source |", "|---|---|---|---|---|---|"]
    for limit in LIMITS:
        page = limit.source.rsplit("/", 1)[-1].split("#")[0]
        rows.append(
            f"| {limit.system} | {limit.what} | {limit.value:,} {limit.unit} | {limit.past} | "
            f"{limit.effect} | [{page}]({limit.source}) |"
        )
    return "\n".join(rows)
