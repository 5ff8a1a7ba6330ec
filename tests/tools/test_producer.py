"""The producer tool against moto in server mode: real SQS calls, nothing patched."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from payments_drain.adapters.sqs_batches import batches, entry_size
from payments_drain.core.messages import parse_record
from payments_drain.core.outcomes import Payment
from payments_drain.tools.producer import main

from tests.tools.sqs_helpers import counts, new_queue, take_all
from tests.twins import payment_body, sqs_record

ROOT = Path(__file__).resolve().parents[2]


def jsonl(path: Path, lines: list) -> Path:
    path.write_text(
        "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n",
        encoding="utf-8",
    )
    return path


def run(capsys, *argv: str) -> tuple[int, dict, list[str]]:
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, json.loads(out.out), out.err.splitlines()


def problems(summary: dict) -> dict[int, str]:
    return {p["line"]: p["code"] for p in summary["problems"]}


ASSOCIATION = [
    {"to": {"id": "501"}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 387}]}
]
JSONL_LINES = [
    payment_body("ch_1"),  # 1 valid
    "{not json",  # 2 INVALID_JSON
    "",  # 3 blank: skipped
    payment_body("ch_2", amount="12,50"),  # 4 INVALID_DECIMAL
    {"paymentKey": "ch_3", "properties": {"hs_initial_amount": "5"}},  # 5 REQUIRED_PROPERTY
    {**payment_body("ch_4"), "associations": ASSOCIATION},  # 6 valid
    payment_body("ch_1", amount="1.00"),  # 7 DUPLICATE_PAYMENT_KEY
    {**payment_body("ch_5"), "paymentkey": "typo"},  # 8 EXTRA_FORBIDDEN
    payment_body(None, amount="3.00"),  # 9 valid, no key
    payment_body("ch_6", hs_payment_id="x"),  # 10 READ_ONLY_VALUE
]


def test_jsonl_sends_exactly_the_valid_lines_and_reports_each_invalid_one(aws_env, tmp_path, capsys):
    url = new_queue("payments")
    code, summary, err = run(capsys, jsonl(tmp_path / "p.jsonl", JSONL_LINES), "--queue-url", url)
    assert code == 1
    assert (summary["lines"], summary["valid"], summary["invalid"], summary["sent"]) == (9, 3, 6, 3)
    assert problems(summary) == {
        2: "INVALID_JSON",
        4: "INVALID_DECIMAL",
        5: "REQUIRED_PROPERTY",
        7: "DUPLICATE_PAYMENT_KEY",
        8: "EXTRA_FORBIDDEN",
        10: "READ_ONLY_VALUE",
    }
    assert (
        "line 4: invalid INVALID_DECIMAL: properties.hs_initial_amount must be a decimal number as a string"
        in err
    )
    assert "line 7: invalid DUPLICATE_PAYMENT_KEY: paymentKey repeats line 1" in err
    sent = [json.loads(m["Body"]) for m in take_all(url)]
    assert sorted(sent, key=json.dumps) == sorted(
        [JSONL_LINES[0], JSONL_LINES[5], JSONL_LINES[8]], key=json.dumps
    )
    for message in take_all(url):  # what the drain will see of them: payments, every one
        assert isinstance(parse_record(sqs_record(message["Body"], message["MessageId"])), Payment)


def test_all_valid_file_exits_zero(aws_env, tmp_path, capsys):
    url = new_queue("payments")
    code, summary, _ = run(
        capsys, jsonl(tmp_path / "p.jsonl", [payment_body(f"k{i}") for i in range(23)]), "--queue-url", url
    )
    assert (code, summary["sent"], summary["invalid"]) == (0, 23, 0)
    assert counts(url) == (23, 0)


def test_csv_with_properties_and_associations_columns(aws_env, tmp_path, capsys):
    url = new_queue("payments")
    association = json.dumps(ASSOCIATION).replace('"', '""')
    path = tmp_path / "payments.csv"
    path.write_text(
        "paymentKey,hs_initial_amount,hs_initiated_date,hs_currency_code,associations\n"  # 1
        f'ch_1,49.90,2026-11-27T10:00:00Z,EUR,"{association}"\n'  # 2 valid
        "ch_2,49.90,2026-11-27T10:00:00Z,EURO,\n"  # 3 INVALID_CURRENCY
        'ch_3,49.90,2026-11-27T10:00:00Z,EUR,"[{not json"\n'  # 4 INVALID_JSON
        "ch_4,,2026-11-27T10:00:00Z,EUR,\n"  # 5 REQUIRED_PROPERTY
        "ch_5,10,1764237600000,,\n"  # 6 valid
        "ch_6,10,1764237600000,EUR\n",  # 7 INVALID_CSV
        encoding="utf-8",
    )
    code, summary, err = run(capsys, path, "--queue-url", url)
    assert code == 1
    assert problems(summary) == {
        3: "INVALID_CURRENCY",
        4: "INVALID_JSON",
        5: "REQUIRED_PROPERTY",
        7: "INVALID_CSV",
    }
    assert "line 4: invalid INVALID_JSON: associations: not valid JSON" in err
    sent = {json.loads(m["Body"])["paymentKey"]: json.loads(m["Body"]) for m in take_all(url)}
    assert sent == {
        "ch_1": {**payment_body("ch_1"), "associations": ASSOCIATION},
        "ch_5": {
            "paymentKey": "ch_5",
            "properties": {"hs_initial_amount": "10", "hs_initiated_date": "1764237600000"},
        },
    }


def test_dry_run_validates_and_sends_nothing(aws_env, tmp_path, capsys):
    url = new_queue("payments")
    code, summary, _ = run(capsys, jsonl(tmp_path / "p.jsonl", JSONL_LINES), "--queue-url", url, "--dry-run")
    assert (code, summary["dryRun"], summary["valid"], summary["invalid"], summary["sent"]) == (
        1,
        True,
        3,
        6,
        0,
    )
    assert counts(url) == (0, 0)
    code, summary, _ = run(capsys, jsonl(tmp_path / "ok.jsonl", [payment_body("a")]), "--dry-run")
    assert (code, summary["valid"]) == (0, 1)


def test_unique_property_is_validated_as_the_drain_does(aws_env, tmp_path, capsys):
    url = new_queue("payments")
    path = jsonl(
        tmp_path / "p.jsonl",
        [payment_body("ch_1", hs_reference_number="ch_1"), payment_body("ch_2", hs_reference_number="other")],
    )
    code, summary, _ = run(capsys, path, "--queue-url", url, "--unique-property", "hs_reference_number")
    assert code == 1 and problems(summary) == {2: "UNIQUE_PROPERTY_MISMATCH"}
    assert [json.loads(m["Body"])["paymentKey"] for m in take_all(url)] == ["ch_1"]


def test_large_payments_go_in_batches_under_1_mib_and_oversized_ones_are_refused(aws_env, tmp_path, capsys):
    url = new_queue("payments")
    # ~110 KB each: ten in one call would pass the 10-entry limit but not the size limit (moto: 1 MiB).
    lines = [
        payment_body(f"big{i}", hs_internal_comment="x" * 60_000, custom_note="n" * 50_000) for i in range(11)
    ]
    # ~300 KB: over the old default of 256 KiB, within SQS's 1 MiB and the template queue's.
    lines.append(payment_body("large", **{f"custom_{i}": "y" * 60_000 for i in range(5)}))
    lines.append(payment_body("huge", **{f"custom_{i}": "y" * 60_000 for i in range(18)}))  # ~1.08 MB
    code, summary, _ = run(capsys, jsonl(tmp_path / "p.jsonl", lines), "--queue-url", url)
    assert problems(summary) == {13: "MESSAGE_TOO_LARGE"} and code == 1
    assert summary["sent"] == 12 and summary["sendFailed"] == 0
    assert counts(url) == (12, 0)


def test_batches_hold_at_most_ten_entries_and_1_mib():
    def entry(i, size):
        return {
            "Id": str(i),
            "MessageBody": "x" * size,
            "MessageAttributes": {"replayOf": {"DataType": "String", "StringValue": "m"}},
        }

    small = [len(group) for group in batches(entry(i, 100) for i in range(23))]
    assert small == [10, 10, 3]
    large = list(batches(entry(i, 400_000) for i in range(5)))
    assert [len(group) for group in large] == [2, 2, 1]
    assert all(sum(entry_size(e) for e in group) <= 1024 * 1024 for group in large)
    assert entry_size(entry(0, 10)) == 10 + len("replayOf") + len("String") + 1


def test_send_failures_are_reported_per_line_and_exit_non_zero(aws_env, tmp_path, capsys):
    code, summary, err = run(
        capsys,
        jsonl(tmp_path / "p.jsonl", [payment_body("a"), payment_body("b")]),
        "--queue-url",
        aws_env + "/123456789012/no-such-queue",
    )
    assert code == 1
    assert (summary["valid"], summary["sent"], summary["sendFailed"]) == (2, 0, 2)
    assert problems(summary) == {1: "SEND_FAILED", 2: "SEND_FAILED"}
    assert any(line.startswith("line 2: not sent SEND_FAILED") for line in err)


def test_fifo_queue_gets_group_ids_from_a_field_and_payment_keys_as_deduplication_ids(
    aws_env, tmp_path, capsys
):
    url = new_queue("payments", fifo=True)
    lines = [
        payment_body("ch_1", hs_customer_email="a@example.com"),
        payment_body("ch_2", hs_customer_email="b@example.com"),
        payment_body("ch_3"),  # no group id field
        payment_body(None, hs_customer_email="c@example.com"),
    ]  # no deduplication id
    code, summary, _ = run(
        capsys,
        jsonl(tmp_path / "p.jsonl", lines),
        "--queue-url",
        url,
        "--group-id-field",
        "hs_customer_email",
    )
    assert code == 1 and problems(summary) == {3: "MISSING_GROUP_ID", 4: "MISSING_PAYMENT_KEY"}
    got = {json.loads(m["Body"])["paymentKey"]: m["Attributes"] for m in take_all(url)}
    assert {k: (a["MessageGroupId"], a["MessageDeduplicationId"]) for k, a in got.items()} == {
        "ch_1": ("a@example.com", "ch_1"),
        "ch_2": ("b@example.com", "ch_2"),
    }


def test_fifo_queue_with_a_constant_group_id(aws_env, tmp_path, capsys):
    url = new_queue("payments", fifo=True)
    code, summary, _ = run(
        capsys,
        jsonl(tmp_path / "p.jsonl", [payment_body("a"), payment_body("b")]),
        "--queue-url",
        url,
        "--group-id",
        "tenant-7",
    )
    assert code == 0 and summary["sent"] == 2
    assert {m["Attributes"]["MessageGroupId"] for m in take_all(url)} == {"tenant-7"}


def test_fifo_queue_without_a_group_id_rule_is_a_usage_error(aws_env, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(
            [str(jsonl(tmp_path / "p.jsonl", [payment_body("a")])), "--queue-url", new_queue("p", fifo=True)]
        )
    assert exit_.value.code == 2 and "--group-id" in capsys.readouterr().err


def test_python_dash_m_producer(aws_env, tmp_path):
    url = new_queue("payments")
    path = jsonl(tmp_path / "p.jsonl", [payment_body("a"), "[1]"])
    result = subprocess.run(
        [sys.executable, "-m", "payments_drain.tools.producer", str(path), "--queue-url", url],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT / "layers/shared")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "line 2: invalid INVALID_BODY: body must be a JSON object" in result.stderr
    assert json.loads(result.stdout)["sent"] == 1
    assert counts(url) == (1, 0)


# --- every line ends sent or reported (issue 13) ---------------------------------------------------


def accounted(summary: dict) -> bool:
    return summary["sent"] + summary["sendFailed"] + summary["invalid"] == summary["lines"]


def test_a_byte_that_is_not_utf8_is_reported_on_its_line_and_every_other_line_is_sent(
    aws_env, tmp_path, capsys
):
    url = new_queue("payments")
    lines = [json.dumps(payment_body(f"k{i}")).encode() for i in range(1, 401)]
    lines[300] = lines[300].replace(b'"49.90"', b'"49.90\xff"')  # line 301, after 250 were sent
    path = tmp_path / "p.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    code, summary, err = run(capsys, path, "--queue-url", url)
    assert code == 1
    assert (summary["lines"], summary["sent"], summary["invalid"]) == (400, 399, 1) and accounted(summary)
    assert problems(summary) == {301: "INVALID_UTF8"}
    assert any(line.startswith("line 301: invalid INVALID_UTF8: byte 0xff at character") for line in err)
    assert len(take_all(url)) == 399


def test_csv_line_numbers_count_the_blank_lines_before_them(aws_env, tmp_path, capsys):
    """A blank line in a CSV file used to make every later line number one short (the csv module's
    DictReader skips it without a word): line 5's problem was reported as line 4's."""
    url = new_queue("payments")
    path = tmp_path / "payments.csv"
    path.write_text(
        "paymentKey,hs_initial_amount,hs_initiated_date,hs_currency_code\n"  # 1
        "ch_1,49.90,2026-11-27T10:00:00Z,EUR\n"  # 2 valid
        "\n"  # 3 blank
        ",,,\n"  # 4 blank too
        "ch_2,49.90,2026-11-27T10:00:00Z,EURO\n"  # 5 INVALID_CURRENCY
        "ch_3,1.00,2026-11-27T10:00:00Z,EUR,extra\n"  # 6 INVALID_CSV: more cells than columns
        "ch_1,2.00,2026-11-27T10:00:00Z,EUR\n",  # 7 DUPLICATE_PAYMENT_KEY of line 2
        encoding="utf-8",
    )
    code, summary, err = run(capsys, path, "--queue-url", url)
    assert code == 1 and (summary["lines"], summary["blank"], summary["sent"]) == (4, 2, 1)
    assert problems(summary) == {5: "INVALID_CURRENCY", 6: "INVALID_CSV", 7: "DUPLICATE_PAYMENT_KEY"}
    assert "line 7: invalid DUPLICATE_PAYMENT_KEY: paymentKey repeats line 2" in err


def test_a_csv_cell_over_the_field_limit_is_reported_and_the_rows_after_it_are_sent(
    aws_env, tmp_path, capsys
):
    url = new_queue("payments")
    path = tmp_path / "payments.csv"
    rows = [
        "paymentKey,hs_initial_amount,hs_initiated_date,hs_internal_comment",
        "ch_0,1.00,2026-11-27T10:00:00Z,ok",
        "ch_big,1.00,2026-11-27T10:00:00Z," + "x" * 200_000,  # line 3: over csv's 131072
        *[f"ch_{i},1.00,2026-11-27T10:00:00Z,ok" for i in range(1, 6)],  # lines 4-8
        'ch_q,1.00,2026-11-27T10:00:00Z,"a quote that never ends',  # line 9, swallows line 10
        "ch_last,1.00,2026-11-27T10:00:00Z,ok",
    ]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    code, summary, err = run(capsys, path, "--queue-url", url)
    assert code == 1
    assert problems(summary) == {3: "INVALID_CSV", 9: "INVALID_CSV"}
    assert [p.get("lastLine") for p in summary["problems"]] == [None, 10]
    assert any(
        line.startswith("line 3: invalid INVALID_CSV: not readable as CSV: field larger than field limit")
        for line in err
    )
    assert any(line.startswith("lines 9-10: invalid INVALID_CSV") for line in err)
    assert sorted(json.loads(m["Body"])["paymentKey"] for m in take_all(url)) == [f"ch_{i}" for i in range(6)]
    assert summary["sent"] == 6 and accounted(summary)


def test_a_character_sqs_refuses_is_reported_alone_and_its_batch_neighbours_are_sent(
    aws_env, tmp_path, capsys
):
    url = new_queue("payments")
    # U+FFFF is valid JSON and UTF-8 but outside SQS's character set: SQS would refuse the whole call of 10.
    lines = [
        json.dumps(
            payment_body(f"ch_{i}", hs_internal_comment="\uffff" if i == 5 else "ok"), ensure_ascii=False
        )
        for i in range(1, 10)
    ]
    code, summary, err = run(capsys, jsonl(tmp_path / "p.jsonl", lines), "--queue-url", url)
    assert code == 1 and problems(summary) == {5: "INVALID_CHARACTER"}
    assert any(line.startswith("line 5: invalid INVALID_CHARACTER: character U+FFFF at ") for line in err)
    assert summary["sent"] == 8 and summary["sendFailed"] == 0 and accounted(summary)
    assert counts(url) == (8, 0)


@pytest.mark.parametrize(
    ("header", "known"),
    [
        ("paymentkey", "paymentKey"),
        ("PaymentKey ", "paymentKey"),
        ("HS_INITIAL_AMOUNT", "hs_initial_amount"),
        ("Associations", "associations"),
    ],
)
def test_a_csv_header_that_differs_from_a_known_column_only_by_case_is_an_error(
    aws_env, tmp_path, capsys, header, known
):
    url = new_queue("payments")
    path = tmp_path / "payments.csv"
    path.write_text(f"hs_initiated_date,{header}\n2026-11-27T10:00:00Z,x\n", encoding="utf-8")
    code, summary, err = run(capsys, path, "--queue-url", url)
    assert code == 1 and summary["sent"] == 0
    assert err == [
        f"{path}: line 1: column {header!r} differs from {known!r} only by case or spaces; "
        "rename it (nothing was sent)"
    ]
    assert counts(url) == (0, 0)


def test_a_csv_column_named_twice_is_an_error(aws_env, tmp_path, capsys):
    path = tmp_path / "payments.csv"
    path.write_text("paymentKey,hs_initial_amount,hs_initial_amount\nch_1,1.00,2.00\n", encoding="utf-8")
    code, summary, err = run(capsys, path, "--queue-url", new_queue("payments"))
    assert code == 1 and summary["sent"] == 0
    assert err == [f"{path}: line 1: column 'hs_initial_amount' appears twice"]


def test_blank_lines_are_counted_and_the_summary_adds_up(aws_env, tmp_path, capsys):
    url = new_queue("payments")
    code, summary, _ = run(capsys, jsonl(tmp_path / "p.jsonl", JSONL_LINES), "--queue-url", url)
    assert (summary["lines"], summary["blank"]) == (9, 1) and accounted(summary)
