"""One fresh process = one Lambda container: ``python -m benchmarks.worker TASK ARGS_JSON RESULT_PATH``.

Started by ``benchmarks.env.run_worker`` with the function's environment (template.yaml's, pointed
at moto, DynamoDB Local and the sandbox). Writes its figures as JSON to RESULT_PATH. Imports as little as
possible before a task starts, so cold-start timings are not polluted.
"""

import sys
import time

STARTED = time.perf_counter()

import json  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import resource  # noqa: E402


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _median(values):
    values = sorted(values)
    n = len(values)
    return values[n // 2] if n % 2 else (values[n // 2 - 1] + values[n // 2]) / 2


def _invoke(app, event, request_id):
    from benchmarks.env import LambdaContext

    return app.lambda_handler(event, LambdaContext(aws_request_id=request_id))


def _stats(control):
    stats = control.stats()
    return stats.get("requests_by_route", {}).get("create", 0), stats


def _thread_cpu_s() -> dict[str, float]:
    """CPU seconds so far of this process's live threads by role: the main thread (parsing, the
    orchestration's passes), the HubSpot calls' pool (``hubspot_N``: the calls, settling, the
    sender's bookkeeping, waiting for slots) and the others (the AWS steps' pool, the deadlines'
    watchdog). Where the handler's CPU goes between them (docs/performance.md, figure a)."""
    import threading

    out = {"main": 0.0, "hubspot calls": 0.0, "other threads": 0.0}
    for thread in threading.enumerate():
        try:
            spent = time.clock_gettime(time.pthread_getcpuclockid(thread.ident))
        except (AttributeError, OSError):  # no per-thread clock here, or the thread just ended
            continue
        if thread is threading.main_thread():
            out["main"] += spent
        elif thread.name.startswith("hubspot_"):
            out["hubspot calls"] += spent
        else:
            out["other threads"] += spent
    return out


# ----------------------------------------------------------------------------- (a), (b)
def task_cpu(args):
    """Handler CPU time per message, by batch size; HubSpot requests per batch (sandbox stats)."""
    import app

    from benchmarks.env import event
    from local.hubspot_sandbox import SandboxControl

    control = SandboxControl(args["control_url"])
    prefix = args["prefix"]
    assert _invoke(app, event(f"{prefix}-warm", 0, 10), "warm") == {"batchItemFailures": []}
    out = {}
    for size, reps in args["sizes"]:
        cpu, wall, requests, threads, switches = [], [], [], [], []
        for rep in range(reps):
            evt = event(f"{prefix}-{size}-{rep}", 0, size)
            before, _ = _stats(control)
            t0, r0 = _thread_cpu_s(), resource.getrusage(resource.RUSAGE_SELF)
            c0, w0 = time.process_time(), time.perf_counter()
            response = _invoke(app, evt, f"r{size}-{rep}")
            c1, w1 = time.process_time(), time.perf_counter()
            t1, r1 = _thread_cpu_s(), resource.getrusage(resource.RUSAGE_SELF)
            after, _ = _stats(control)
            if response != {"batchItemFailures": []}:
                raise RuntimeError(f"batch of {size}: {len(response['batchItemFailures'])} messages retried")
            cpu.append((c1 - c0) / size * 1e6)
            wall.append((w1 - w0) / size * 1e6)
            requests.append(after - before)
            threads.append({role: (t1[role] - t0[role]) / size * 1e6 for role in t1})
            switches.append(r1.ru_nvcsw - r0.ru_nvcsw)  # a thread that waited and was woken
        out[str(size)] = {
            "cpu_us_per_message": round(_median(cpu), 2),
            "cpu_us_samples": [round(v, 2) for v in cpu],
            # the same CPU by thread (medians of the repetitions; they add up to about the total)
            "cpu_us_per_message_by_thread": {
                role: round(_median([t[role] for t in threads]), 2) for role in threads[0]
            },
            "voluntary_context_switches_per_batch": _median(switches),
            "wall_us_per_message": round(_median(wall), 2),
            "requests_per_batch": requests,
            "reps": reps,
        }
    _, stats = _stats(control)
    out["sandbox_payments_stored"] = stats.get("payments_stored")
    largest = max(size for size, _ in args["sizes"])
    out["json_floor"] = _json_floor(event(f"{prefix}-floor", 0, largest)["Records"])
    return out


def _least_cpu_us(fn, count: int, repeat: int = 3) -> float:
    """The least process CPU of ``repeat`` runs of ``fn``, in µs per one of ``count``."""
    import gc

    best = None
    for _ in range(repeat):
        gc.collect()
        c0 = time.process_time()
        fn()
        spent = time.process_time() - c0
        best = spent if best is None else min(best, spent)
    return best / count * 1e6


def _json_floor(records) -> dict:
    """What any drain must spend on JSON, in this process: ``json.loads`` of each body, plus its
    share of ``json.dumps`` of the request bodies (the inputs of 100 per call, built beforehand, as
    the baseline builds them). The least of three each: the floor is the cheapest the machine did."""
    size = len(records)
    bodies = [r["body"] for r in records]
    loads = _least_cpu_us(lambda: [json.loads(b) for b in bodies], size)
    inputs = []
    for record in records:
        body = json.loads(record["body"])
        item = {"properties": body["properties"], "objectWriteTraceId": record["messageId"]}
        if body.get("associations"):
            item["associations"] = body["associations"]
        inputs.append(item)
    calls = [inputs[i : i + 100] for i in range(0, size, 100)]
    dumps = _least_cpu_us(
        lambda: [json.dumps({"inputs": c}, separators=(",", ":")).encode() for c in calls], size
    )
    return {
        "size": size,
        "loads_us_per_message": round(loads, 2),
        "dumps_us_per_message": round(dumps, 2),
        "floor_us_per_message": round(loads + dumps, 2),
    }


def task_baseline(args):
    """Powertools' per-record pattern: BatchProcessor + process_partial_response, one 1-input
    batch/create per record through the same urllib3 HubSpotClient."""
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
    from payments_drain.adapters.hubspot import HubSpotClient
    from payments_drain.adapters.token import SecretToken
    from payments_drain.orchestration.config import load_settings

    from benchmarks.env import LambdaContext, event

    settings = load_settings(os.environ)
    client = HubSpotClient(
        settings.HUBSPOT_BASE_URL,
        settings.HUBSPOT_API_VERSION,
        settings.HUBSPOT_CONNECT_TIMEOUT_SECONDS,
        settings.HUBSPOT_READ_TIMEOUT_SECONDS,
    )
    token = SecretToken(settings.HUBSPOT_TOKEN_SECRET_ID, settings.TOKEN_CACHE_SECONDS)
    processor = BatchProcessor(event_type=EventType.SQS)

    def record_handler(record):
        body = json.loads(record.body)
        item = {"properties": body["properties"], "objectWriteTraceId": record.message_id}
        if body.get("associations"):
            item["associations"] = body["associations"]
        answer = client.write_batch([item], token.get())
        if answer.status != 201:
            raise RuntimeError(f"HubSpot answered {answer.status or answer.error}")

    def handler(evt, context):
        return process_partial_response(
            event=evt, record_handler=record_handler, processor=processor, context=context
        )

    prefix = args["prefix"]
    assert handler(event(f"{prefix}-warm", 0, 10), LambdaContext()) == {"batchItemFailures": []}
    out = {}
    for size, reps in args["sizes"]:
        cpu, wall = [], []
        for rep in range(reps):
            evt = event(f"{prefix}-{size}-{rep}", 0, size)
            c0, w0 = time.process_time(), time.perf_counter()
            response = handler(evt, LambdaContext())
            c1, w1 = time.process_time(), time.perf_counter()
            if response != {"batchItemFailures": []}:
                raise RuntimeError(f"baseline batch of {size}: {len(response['batchItemFailures'])} failed")
            cpu.append((c1 - c0) / size * 1e6)
            wall.append((w1 - w0) / size * 1e6)
        out[str(size)] = {
            "cpu_us_per_message": round(_median(cpu), 2),
            "wall_us_per_message": round(_median(wall), 2),
            "reps": reps,
        }
    return out


def task_profile(args):
    """cProfile of one warm batch: where the handler's CPU time goes."""
    import cProfile
    import io
    import pstats

    import app

    from benchmarks.env import event

    prefix = args["prefix"]
    _invoke(app, event(f"{prefix}-warm", 0, 10), "warm")
    evt = event(prefix, 0, args["size"])
    profiler = cProfile.Profile(time.process_time)
    profiler.enable()
    _invoke(app, evt, "profiled")
    profiler.disable()
    stream = io.StringIO()
    stats = pstats.Stats(profiler, stream=stream)
    stats.sort_stats("tottime").print_stats(args.get("top", 25))
    tottime = stream.getvalue()
    stream = io.StringIO()
    stats = pstats.Stats(profiler, stream=stream)
    stats.sort_stats("cumulative").print_stats(args.get("top", 25))
    return {"size": args["size"], "by_tottime": tottime, "by_cumulative": stream.getvalue()}


# ----------------------------------------------------------------------------- (d)
def task_third_party_modules(args):
    """The third-party modules (files under site-packages) that importing the handler loads."""
    before = set(sys.modules)
    import app  # noqa: F401

    names = []
    for name, module in list(sys.modules.items()):
        if name in before:
            continue
        path = getattr(module, "__file__", None) or ""
        if "site-packages" in path:
            names.append(name)
    return {"modules": names}


def task_cold_start(args):
    t0 = time.perf_counter()
    c0 = time.process_time()
    import app

    from benchmarks.env import event  # the event is built outside the timed span below

    t1 = time.perf_counter()
    evt = event(args["prefix"], 0, args["size"])
    t2 = time.perf_counter()
    response = _invoke(app, evt, "cold")
    t3 = time.perf_counter()
    c3 = time.process_time()
    if response != {"batchItemFailures": []}:
        raise RuntimeError(f"cold start invocation retried {len(response['batchItemFailures'])} messages")
    ours = [  # the drain's modules, and whether a .pyc was there to read
        bool(getattr(m, "__cached__", None)) and os.path.exists(m.__cached__)
        for name, m in sys.modules.items()
        if (name == "app" or name.startswith("payments_drain")) and getattr(m, "__file__", None)
    ]
    return {
        "modules_from_bytecode": ours.count(True),
        "modules_from_source": ours.count(False),
        "import_s": t1 - t0,
        "first_invocation_s": t3 - t2,
        "total_s": (t1 - t0) + (t3 - t2),
        "cpu_s": (c3 - c0),
        "since_interpreter_start_s": t3 - STARTED,
        "maxrss_mb": _maxrss_mb(),
        "xray_sampler": _xray_sampler(),
    }


def task_import_floor(args):
    import gc
    import importlib

    if args.get("collector_off"):  # as app.py imports them
        gc.disable()
    t0 = time.perf_counter()
    failed = 0
    for name in args["modules"]:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - a module that cannot load alone is skipped, counted
            failed += 1
    t1 = time.perf_counter()
    return {
        "total_s": t1 - t0,
        "failed_imports": failed,
        "maxrss_mb": _maxrss_mb(),
        "xray_sampler": _xray_sampler(),
    }


def _xray_sampler() -> str | None:
    """The X-Ray SDK's sampler, if it was imported: LocalSampler in Lambda (LAMBDA_TASK_ROOT set),
    DefaultSampler elsewhere, which builds two xray clients at import."""
    xray = sys.modules.get("aws_xray_sdk.core")
    return type(xray.xray_recorder.sampler).__name__ if xray else None


# ----------------------------------------------------------------------------- (e)
def task_memory(args):
    import app

    from benchmarks.env import event_of_size

    after_import = _maxrss_mb()
    raw = json.dumps(event_of_size(args["prefix"], args["size"], args["event_bytes"]))
    size_bytes = len(raw.encode())
    evt = json.loads(raw)  # as the runtime hands it over: parsed from the invoke payload
    after_event = _maxrss_mb()
    response = _invoke(app, evt, "mem")
    if response != {"batchItemFailures": []}:
        raise RuntimeError(f"memory batch retried {len(response['batchItemFailures'])} messages")
    return {
        "event_bytes": size_bytes,
        "maxrss_after_import_mb": after_import,
        "maxrss_after_event_mb": after_event,
        "maxrss_mb": _maxrss_mb(),
        "messages": args["size"],
    }


# ----------------------------------------------------------------------------- (f)
ITEM_OVERHEAD = 100  # DynamoDB counts ~100 bytes of overhead per item, plus names and values


def _item_bytes(item) -> int:
    size = ITEM_OVERHEAD
    for name, value in item.items():
        ((kind, raw),) = value.items()
        size += len(name.encode()) + (len(str(raw).encode()) if kind in ("S", "N") else 8)
    return size


class DynamoMeter:
    """Counts DynamoDB requests and their capacity units from request shapes (botocore hooks)."""

    def __init__(self, client) -> None:
        import threading

        self.lock = threading.Lock()
        self.requests = {}
        self.rcu = 0.0
        self.wcu = 0.0
        self.max_item_bytes = 0
        client.meta.events.register("before-parameter-build.dynamodb", self.before_call)

    def before_call(self, model=None, params=None, **_):
        name = model.name
        wcu = 0.0
        if name == "PutItem":
            size = _item_bytes(params["Item"])
            wcu = -(-size // 1024)
            self.max_item_bytes = max(self.max_item_bytes, size)
        elif (
            name == "BatchGetItem"
        ):  # charged per key asked, found or not: 1 unit per 4 KB consistent, half eventual
            with self.lock:
                for spec in params["RequestItems"].values():
                    self.rcu += (1.0 if spec.get("ConsistentRead") else 0.5) * len(spec["Keys"])
        elif name == "BatchExecuteStatement":  # the ledger's INSERTs: one item per statement, as PutItem
            for statement in params["Statements"]:
                names = re.findall(r"'([^']+)'\s*:\s*\?", statement["Statement"])
                size = _item_bytes({n: v for n, v in zip(names, statement["Parameters"])})
                wcu += -(-size // 1024)
                self.max_item_bytes = max(self.max_item_bytes, size)
        elif name == "BatchWriteItem":
            for requests in params["RequestItems"].values():
                for request in requests:
                    if "PutRequest" in request:
                        size = _item_bytes(request["PutRequest"]["Item"])
                        wcu += -(-size // 1024)
                        self.max_item_bytes = max(self.max_item_bytes, size)
                    else:
                        wcu += 1
        with self.lock:
            self.requests[name] = self.requests.get(name, 0) + 1
            self.wcu += wcu


def task_ledger(args):
    """Ledger on: DynamoDB requests and units per payment (from the request shapes), and the
    time and CPU that claim + record_created take per batch of ``chunk`` payments."""
    import app

    from benchmarks.env import event

    ledger = app.DRAIN.ledger
    if ledger is None:
        raise RuntimeError("the ledger is off in this environment")
    prefix = args["prefix"]
    _invoke(app, event(f"{prefix}-warm", 0, 10), "warm")  # token, connections
    meter = DynamoMeter(ledger.client)
    timings = {"claim": [], "record_created": []}
    cpu_in_ledger = []

    def timed(name, fn):
        def wrapper(*a, **k):
            t0, c0 = time.perf_counter(), time.process_time()
            try:
                return fn(*a, **k)
            finally:
                timings[name].append(time.perf_counter() - t0)
                cpu_in_ledger.append(time.process_time() - c0)

        return wrapper

    ledger.claim = timed("claim", ledger.claim)
    ledger.record_created = timed("record_created", ledger.record_created)
    chunk, batches = args["chunk"], args["batches"]
    cpu, wall = [], []
    for rep in range(batches):
        evt = event(f"{prefix}-{rep}", 0, chunk)
        c0, w0 = time.process_time(), time.perf_counter()
        response = _invoke(app, evt, f"l{rep}")
        cpu.append((time.process_time() - c0) / chunk * 1e6)
        wall.append(time.perf_counter() - w0)
        if response != {"batchItemFailures": []}:
            raise RuntimeError(f"ledger batch retried {len(response['batchItemFailures'])} messages")
    payments = chunk * batches
    per_chunk = [a + b for a, b in zip(timings["claim"], timings["record_created"])]
    happy = (dict(meter.requests), meter.rcu, meter.wcu)
    response = _invoke(app, event(f"{prefix}-0", 0, chunk), "redelivered")  # the first batch again
    if response != {"batchItemFailures": []}:
        raise RuntimeError("a redelivered batch was not settled as duplicates")
    duplicate = {
        "requests": {k: v - happy[0].get(k, 0) for k, v in meter.requests.items() if v != happy[0].get(k, 0)},
        "rcu_per_payment": round((meter.rcu - happy[1]) / chunk, 4),
        "wcu_per_payment": round((meter.wcu - happy[2]) / chunk, 4),
    }
    meter.requests, meter.rcu, meter.wcu = happy
    return {
        "redelivered_duplicates": duplicate,
        "payments": payments,
        "requests": dict(meter.requests),
        "requests_per_payment": round(sum(meter.requests.values()) / payments, 4),
        "rcu_per_payment": round(meter.rcu / payments, 4),
        "wcu_per_payment": round(meter.wcu / payments, 4),
        "max_item_bytes": meter.max_item_bytes,
        "claim_ms_median": round(_median(timings["claim"]) * 1000, 2),
        "record_created_ms_median": round(_median(timings["record_created"]) * 1000, 2),
        "ledger_ms_per_chunk_median": round(_median(per_chunk) * 1000, 2),
        "ledger_cpu_us_per_payment": round(sum(cpu_in_ledger) / payments * 1e6, 1),
        "handler_ms_per_chunk_median": round(_median(wall) * 1000, 2),
        "handler_cpu_us_per_message_median": round(_median(cpu), 2),
    }


# ----------------------------------------------------------------------------- (g)
def _version_event(prefix: str, count: int, version: int, status: str) -> dict:
    """``count`` payments at ``version`` (no associations: the write calls alone). The message ids
    depend on the key and the version: a redelivery repeats them, an update is a new message."""
    import uuid

    from benchmarks.env import sqs_record

    records = []
    for i in range(count):
        key = f"{prefix}-{i}"
        body = {
            "paymentKey": key,
            "version": version,
            "properties": {
                "hs_initial_amount": "49.90",
                "hs_initiated_date": "2026-11-27T10:00:00Z",
                "hs_currency_code": "EUR",
                "hs_latest_status": status,
                "hs_reference_number": f"INV-{key}",
            },
        }
        records.append(sqs_record(body, str(uuid.uuid5(uuid.NAMESPACE_OID, f"{key}-v{version}"))))
    return {"Records": records}


def task_write_mode(args):
    """One write mode (the environment says which): DynamoDB units and HubSpot requests per new
    payment, per redelivered payment (the first batch again, same messages) and per update (the
    first batch at a newer version), each step checked against what the sandbox stored."""
    import app

    from local.hubspot_sandbox import SandboxControl

    control = SandboxControl(args["control_url"])
    prefix, chunk, batches = args["prefix"], args["chunk"], args["batches"]
    _invoke(app, _version_event(f"{prefix}-warm", 10, 1, "succeeded"), "warm")  # token, connections
    ledger = app.DRAIN.ledger
    meter = DynamoMeter(ledger.client) if ledger is not None else None

    def counts():  # read units, write units, requests so far
        return (meter.rcu, meter.wcu, sum(meter.requests.values())) if meter else (0.0, 0.0, 0)

    def step(name, events, expect_stored, expect_updated=None):
        before, units = control.stats(), counts()
        cpu = 0.0
        for n, evt in enumerate(events):
            c0 = time.process_time()
            response = _invoke(app, evt, f"{name}-{n}")
            cpu += time.process_time() - c0
            if response != {"batchItemFailures": []}:
                raise RuntimeError(f"{name}: {len(response['batchItemFailures'])} messages retried")
        after = control.stats()
        payments = chunk * len(events)
        stored = after["payments_stored"] - before["payments_stored"]
        updated = after["payments_updated"] - before["payments_updated"]
        if stored != expect_stored or (expect_updated is not None and updated != expect_updated):
            raise RuntimeError(
                f"{name}: the sandbox stored {stored} and updated {updated} payments, "
                f"expected {expect_stored} and {expect_updated}"
            )
        writes = sum(
            after["requests_by_route"].get(r, 0) - before["requests_by_route"].get(r, 0)
            for r in ("create", "upsert")
        )
        now = counts()
        return {
            "payments": payments,
            "rcu_per_payment": round((now[0] - units[0]) / payments, 4),
            "wcu_per_payment": round((now[1] - units[1]) / payments, 4),
            "dynamodb_requests_per_payment": round((now[2] - units[2]) / payments, 4),
            "hubspot_requests": writes,
            "hubspot_requests_per_payment": round(writes / payments, 4),
            "payments_stored": stored,
            "payments_updated": updated,
            "cpu_us_per_payment": round(cpu / payments * 1e6, 1),
        }

    new = [_version_event(f"{prefix}-{b}", chunk, 1, "processing") for b in range(batches)]
    out = {
        "mode": args["mode"],
        "ledger": ledger is not None,
        "ledger_claims": ledger is not None and app.DRAIN.ledger_claims,  # else it keeps only reports
        "upsert": app.DRAIN.upsert,
        "unique_property": app.DRAIN.unique_property,
        "chunk": chunk,
    }
    out["new"] = step("new", new, chunk * batches)
    out["redelivered"] = step("redelivered", new[:1], 0)  # the first batch again: nothing new is stored
    if app.DRAIN.upsert:
        out["update"] = step("update", [_version_event(f"{prefix}-0", chunk, 2, "succeeded")], 0, chunk)
        # the first version again, after the second: with the ledger refused as stale, without it written
        out["older_after_newer"] = older = step("older", new[:1], 0)
        statuses = [
            p["properties"].get("hs_latest_status")
            for p in control.payments()
            if p["properties"].get("hs_reference_number", "").startswith(f"INV-{prefix}-0-")
        ]
        if len(statuses) != chunk:
            raise RuntimeError(f"older: {len(statuses)} payments of the first batch found, expected {chunk}")
        older["overwritten_by_older_version"] = statuses.count("processing")
    return out


def task_breakdown(args):
    """Process CPU time of each step of the drain for one batch, step by step in this thread
    (cProfile sees only the main thread, and the HubSpot calls run in the pool's threads)."""
    import app
    from payments_drain.core import batching
    from payments_drain.core.messages import parse_record
    from payments_drain.core.outcomes import Payment
    from pydantic_core import from_json, to_json

    from benchmarks.env import event

    drain = app.DRAIN
    prefix = args["prefix"]
    size = args["size"]
    _invoke(app, event(f"{prefix}-warm", 0, 10), "warm")
    records = event(prefix, 0, size)["Records"]
    token = drain.sender.token.get()
    steps = {}

    def step(name, fn, repeat=3):  # the least of three: the step's own cost, not the machine's noise
        import gc

        best = None
        for _ in range(repeat):
            gc.collect()
            c0 = time.process_time()
            value = fn()
            spent = time.process_time() - c0
            best = spent if best is None else min(best, spent)
        steps[name] = round(best / size * 1e6, 2)
        return value

    from payments_drain.core import messages

    msgs = step("  message_of (record to Message)", lambda: [messages.message_of(r) for r in records])
    parsed = step("  pydantic_core.from_json of the body", lambda: [from_json(m.body) for m in msgs])
    bodies = step(
        "  PAYMENT_BODY.validate_python (pydantic TypedDicts)",
        lambda: [messages.PAYMENT_BODY.validate_python(p) for p in parsed],
    )
    step(
        "  check_properties (Python, per property)",
        lambda: [messages.check_properties(b["properties"], b["paymentKey"], None) for b in bodies],
    )
    step("  (for comparison: json.loads of the body)", lambda: [json.loads(m.body) for m in msgs])
    parsed = step("parse_record (all of the above)", lambda: [parse_record(r) for r in records])
    payments = [p for p in parsed if isinstance(p, Payment)]
    chunks = step("plan_chunks", lambda: batching.plan_chunks(payments))
    inputs = step("hubspot_input", lambda: [[p.hubspot_input() for p in chunk] for chunk in chunks])
    step(
        "  (for comparison: json.dumps of the request bodies)",
        lambda: [json.dumps({"inputs": i}, separators=(",", ":")).encode() for i in inputs],
    )
    step("pydantic_core.to_json request bodies", lambda: [to_json({"inputs": i}) for i in inputs])
    answers = step(
        "HTTP round trips (write_batch, one thread)",
        lambda: [drain.sender.hubspot.write_batch(i, token) for i in inputs],
        1,
    )
    step("settle answers", lambda: [batching.settle(c, a) for c, a in zip(chunks, answers)])
    whole = []
    for rep in range(3):
        evt = event(f"{prefix}-whole-{rep}", 0, size)
        c0 = time.process_time()
        _invoke(app, evt, f"whole-{rep}")
        whole.append(time.process_time() - c0)
    steps["whole handler (least of 3)"] = round(min(whole) / size * 1e6, 2)
    return {
        "size": size,
        "cpu_us_per_message": steps,
        "response_bytes_per_call": len(json.dumps(answers[0].body)),
    }


def task_cold_start_breakdown(args):
    """Where a cold start goes beyond the third-party imports: the same steps as app.py, timed
    (the cyclic collector off, as there, until ``import app`` turns it on again)."""
    import gc
    import importlib

    gc.disable()
    steps = {}
    t = time.perf_counter()

    def mark(name):
        nonlocal t
        now = time.perf_counter()
        steps[name] = round((now - t) * 1000, 1)
        t = now

    for name in args["modules"]:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001
            pass
    mark("third-party modules (the floor)")
    from payments_drain.adapters import hubspot, ledger, reports, token  # noqa: F401
    from payments_drain.core import messages  # noqa: F401
    from payments_drain.orchestration import config, drain, service  # noqa: F401

    mark("payments_drain modules")
    settings = config.load_settings(os.environ)
    mark("load_settings (pydantic)")
    client = hubspot.HubSpotClient(settings.HUBSPOT_BASE_URL)
    mark("HubSpotClient (urllib3 PoolManager)")
    secret = token.SecretToken(settings.HUBSPOT_TOKEN_SECRET_ID, settings.TOKEN_CACHE_SECONDS)
    mark("SecretToken (Powertools SecretsProvider: boto3 secretsmanager client)")
    reports.SqsReporter(settings.FAILURE_QUEUE_URL)
    mark("SqsReporter (boto3 sqs client)")
    if settings.ledger_enabled:
        ledger.DynamoLedger(settings.LEDGER_TABLE_NAME)
        mark("DynamoLedger (boto3 dynamodb client)")
    secret.get()
    mark("first token read (GetSecretValue)")
    import app  # builds its own drain: the whole import again, minus the modules

    mark("import app (settings + build_drain again, modules cached)")
    from benchmarks.env import event

    evt = event(args["prefix"], 0, args["size"])
    t = time.perf_counter()
    _invoke(app, evt, "cold")
    mark(f"first invocation ({args['size']} payments)")
    return {"steps_ms": steps, "client_kept": bool(client)}


def task_ledger_shapes(args):
    """Client-side CPU per payment of the DynamoDB request shapes a ledger can use, against the
    stub (``AWS_ENDPOINT_URL_DYNAMODB``), all through one boto3 client with botocore's defaults
    (parameter validation on, which the ledger's own client turns off)."""
    import boto3
    from botocore.config import Config

    client = boto3.client("dynamodb", config=Config(max_pool_connections=20, retries={"mode": "standard"}))
    client.put_item(TableName="t", Item={"paymentKey": {"S": "warm"}})
    n = args["payments"]

    def item(key):
        return {
            "paymentKey": {"S": key},
            "status": {"S": "claimed"},
            "claimant": {"S": "0f8e7c1a-request-id"},
            "claimExpiresAt": {"N": "1764237600000"},
            "expiresAt": {"N": "1764324000"},
        }

    cond = {
        "ConditionExpression": "attribute_not_exists(paymentKey) OR (#s = :claimed AND claimExpiresAt < :now)",
        "ExpressionAttributeNames": {"#s": "status"},
        "ExpressionAttributeValues": {":claimed": {"S": "claimed"}, ":now": {"N": "1764237600000"}},
    }
    insert = "INSERT INTO \"t\" VALUE {'paymentKey': ?, 'status': ?, 'claimant': ?, 'claimExpiresAt': ?, 'expiresAt': ?}"
    shapes = {
        "BatchExecuteStatement, 25 INSERTs per request (the claim today)": lambda: [
            client.batch_execute_statement(
                Statements=[
                    {"Statement": insert, "Parameters": list(item(f"k{i}").values())}
                    for i in range(g, g + 25)
                ]
            )
            for g in range(0, n, 25)
        ],
        "PutItem, conditional, 1 per payment (the claim before)": lambda: [
            client.put_item(TableName="t", Item=item(f"k{i}"), **cond) for i in range(n)
        ],
        "TransactWriteItems, 100 conditional Puts per request (2 WCU per item)": lambda: [
            client.transact_write_items(
                TransactItems=[
                    {"Put": {"TableName": "t", "Item": item(f"k{i}"), **cond}} for i in range(g, g + 100)
                ]
            )
            for g in range(0, n, 100)
        ],
        "BatchWriteItem, 25 Puts per request (record_created today)": lambda: [
            client.batch_write_item(
                RequestItems={"t": [{"PutRequest": {"Item": item(f"k{i}")}} for i in range(g, g + 25)]}
            )
            for g in range(0, n, 25)
        ],
        "BatchGetItem, 100 keys per request (the read of refused claims)": lambda: [
            client.batch_get_item(
                RequestItems={
                    "t": {
                        "Keys": [{"paymentKey": {"S": f"k{i}"}} for i in range(g, g + 100)],
                        "ConsistentRead": True,
                    }
                }
            )
            for g in range(0, n, 100)
        ],
    }
    shapes["Powertools Idempotency, idempotent_function per payment (PutItem + UpdateItem)"] = (
        _powertools_idempotency(client, n)
    )
    out = {}
    for name, fn in shapes.items():
        c0 = time.process_time()
        fn()
        out[name] = round((time.process_time() - c0) / n * 1e6, 1)
    return {"cpu_us_per_payment": out, "payments": n}


def _powertools_idempotency(client, n):
    """The reference design: Powertools' own idempotent_function around each payment, with its
    DynamoDB persistence layer on the same client (one conditional PutItem to claim, one
    UpdateItem to complete, per key)."""
    import warnings

    from aws_lambda_powertools.utilities.idempotency import (
        DynamoDBPersistenceLayer,
        IdempotencyConfig,
        idempotent_function,
    )

    layer = DynamoDBPersistenceLayer(table_name="t", key_attr="paymentKey", boto3_client=client)
    config = IdempotencyConfig(event_key_jmespath="paymentKey", use_local_cache=False)

    @idempotent_function(data_keyword_argument="payment", persistence_store=layer, config=config)
    def send(payment):
        return {"id": "1"}

    warnings.simplefilter("ignore")  # outside a Lambda handler Powertools warns about the missing context
    send(payment={"paymentKey": "warm"})
    return lambda: [send(payment={"paymentKey": f"p{i}"}) for i in range(n)]


def main() -> None:
    task, args, result_path = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
    result = globals()[f"task_{task}"](args)
    with open(result_path, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
