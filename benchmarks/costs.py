"""Cost per million payments, from the measured figures and the template's defaults.

Prices are public us-east-1 list prices (on-demand, no free tier), stated in PRICES; change
them there. The model, first order:

- Lambda duration per batch = HubSpot wait + CPU / (memory / 1,769 MB), because Lambda gives a
  function CPU in proportion to its memory (1 vCPU at 1,769 MB). CPU is the handler's per message
  (figure a, batch of BatchSize, ledger off) plus, where the ledger claims payments, its CPU per
  payment (figure f); the HubSpot wait is an invocation's wall time in figure c (1,000 payments,
  150 +- 50 ms per request, P calls in parallel) less its CPU. CPU time here is assumed to equal
  CPU time on Lambda's arm64 core.
- SQS: producers' sends, one payment per message, both ways (``PRODUCERS``): one SendMessage per
  payment, or SendMessageBatch of 10 (what ``payments_drain.tools.producer`` sends; SQS bills a batch as
  one request per 64 KB of its payload, so 10 per request holds for bodies up to 6.5 KB on
  average); the event source's receives (up to 10 messages each) and deletes (batches of 10).
  ``usd`` and ``usd_total`` are with SendMessage, ``usd_total_by_producer`` has both.
- DynamoDB: read and write units per payment from figure f, on-demand; with figure g, one scenario
  per write mode with that mode's units per new payment (and, beside the total, what DynamoDB
  adds per million redelivered payments and per million updates). The ledger's writes for
  failure reports (2 units per rejected message) are not in a total: the runs send valid payments.
- DynamoDB, the rate limit's timeline (rate_slots.py), in every mode: per batch one conditional
  update of a small item (1 write unit), and one more when another container moved the timeline
  since this one last saw it (figure h measures about two per batch), RATE_SLOTS_UNITS_PER_BATCH;
  a container's first claim reads the item once (not counted).
- Secrets Manager: one GetSecretValue per container per TOKEN_CACHE_SECONDS while it is warm.
"""

from __future__ import annotations

from typing import Any

PRICES = {
    "lambda_gb_s_arm64": 0.0000133334,  # USD per GB-second, arm64, first 6 billion GB-s per month
    "lambda_request": 0.20 / 1e6,  # USD per invocation
    "sqs_request": 0.40 / 1e6,  # USD per standard-queue request (64 KB chunk)
    "dynamodb_wru": 0.625 / 1e6,  # USD per on-demand write request unit (since November 2024)
    "dynamodb_rru": 0.125 / 1e6,  # USD per on-demand read request unit
    "secrets_api_call": 0.05 / 10_000,  # USD per Secrets Manager API call
}
MB_PER_VCPU = 1769
# The timeline item is the key and two numbers, well under 1 KB: an update is 1 write unit.
RATE_SLOTS_UNITS_PER_BATCH = {"rru": 0, "wru": 2}
PRODUCERS = {"SendMessage": 1, "SendMessageBatch": 10}  # payments per send request


def estimate(
    results: dict[str, Any],
    batch_size: int,
    memory_mb: int,
    concurrency: int,
    token_cache_s: int,
    payments: int = 1_000_000,
) -> dict[str, Any]:
    a, c, f = results["a"], results["c"], results["f"]
    size = str(batch_size) if str(batch_size) in a["drain"] else "1000"
    handler_cpu_us = a["drain"][size]["cpu_us_per_message"]
    ledger_cpu_us = f["stub_5ms"]["ledger_cpu_us_per_payment"]
    default = c["variants"][0]
    per_invocation_cpu = default["handler_cpu_s"] / default["invocations"]
    hubspot_wait_s = max(default["invocation_s_median"] - per_invocation_cpu, 0.0) * batch_size / 1000
    cpu_share = min(memory_mb / MB_PER_VCPU, 1.0)
    batches = payments / batch_size
    out: dict[str, Any] = {
        "payments": payments,
        "batch_size": batch_size,
        "memory_mb": memory_mb,
        "cpu_share_vcpu": round(cpu_share, 3),
        "hubspot_wait_s_per_batch": round(hubspot_wait_s, 3),
        "prices_usd": PRICES,
        "scenarios": {},
    }
    scenarios = [
        (
            "ledger on, every payment claimed (figure f)",
            ledger_cpu_us,
            f["dynamodb_local"]["rcu_per_payment"],
            f["dynamodb_local"]["wcu_per_payment"],
            None,
        ),
        ("ledger off", 0.0, 0.0, 0.0, None),
    ]
    for mode, g in (results.get("g") or {}).get("modes", {}).items():
        # the handler's CPU is figure a's in every mode; a mode whose ledger claims payments adds
        # figure f's ledger CPU (with the unique property in create mode it keeps only reports)
        scenarios.append(
            (
                f"g. {mode}",
                ledger_cpu_us if g["ledger_claims"] else 0.0,
                g["new"]["rcu_per_payment"],
                g["new"]["wcu_per_payment"],
                g,
            )
        )
    for name, ledger_us, rru, wru, g in scenarios:
        cpu_s = (handler_cpu_us + ledger_us) * batch_size / 1e6
        duration_s = hubspot_wait_s + cpu_s / cpu_share
        gb_s = duration_s * memory_mb / 1024 * batches
        sqs_requests = {
            "send (SendMessage, 1 per payment)": payments,
            "receive (10 per request)": payments / 10,
            "delete (DeleteMessageBatch of 10)": payments / 10,
        }
        costs = {
            "lambda_duration": gb_s * PRICES["lambda_gb_s_arm64"],
            "lambda_requests": batches * PRICES["lambda_request"],
            "sqs": sum(sqs_requests.values()) * PRICES["sqs_request"],
            "dynamodb": payments * (rru * PRICES["dynamodb_rru"] + wru * PRICES["dynamodb_wru"])
            + batches
            * (
                RATE_SLOTS_UNITS_PER_BATCH["rru"] * PRICES["dynamodb_rru"]
                + RATE_SLOTS_UNITS_PER_BATCH["wru"] * PRICES["dynamodb_wru"]
            ),
        }
        sends = {
            how: payments / per_request * PRICES["sqs_request"] for how, per_request in PRODUCERS.items()
        }
        by_producer = {how: sum(costs.values()) - sends["SendMessage"] + usd for how, usd in sends.items()}
        out["scenarios"][name] = {
            "cpu_s_per_batch": round(cpu_s, 3),
            "lambda_duration_s_per_batch": round(duration_s, 3),
            "lambda_gb_s": round(gb_s, 1),
            "lambda_invocations": batches,
            "sqs_requests": sqs_requests,
            "dynamodb_rru": payments * rru,
            "dynamodb_wru": payments * wru,
            "usd": {k: round(v, 4) for k, v in costs.items()},
            "usd_total": round(sum(costs.values()), 4),
            "usd_total_by_producer": {how: round(usd, 4) for how, usd in by_producer.items()},
        }
        if g is not None:
            extra = {
                step: round(
                    1e6
                    * (
                        g[step]["rcu_per_payment"] * PRICES["dynamodb_rru"]
                        + g[step]["wcu_per_payment"] * PRICES["dynamodb_wru"]
                    ),
                    4,
                )
                for step in ("redelivered", "update")
                if step in g
            }
            out["scenarios"][name]["dynamodb_usd_per_million_more"] = extra
    calls_per_month = concurrency * (30 * 86_400 / max(token_cache_s, 1))
    out["secrets_manager"] = {
        "calls_per_month_all_containers_warm": round(calls_per_month),
        "usd_per_month": round(calls_per_month * PRICES["secrets_api_call"], 4),
        "note": "per container and cache age, not per payment; plus USD 0.40 per secret per month",
    }
    return out
