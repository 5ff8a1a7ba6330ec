"""Figure h's model (benchmarks/contention.py) in virtual time: deterministic, so a test, not a benchmark."""

from benchmarks import contention


def test_many_containers_on_the_timeline_drain_near_the_bound_without_429_or_dead_letters():
    result = contention.run(120, 2_400, seed=3)
    assert result.throttled_429 == 0 and result.dead_lettered == 0
    assert result.ratio <= contention.GOALS["ratio"]
    assert result.holds["no_slot_yet"] > 0  # more containers than the limit feeds: tickets were taken
    assert result.peak_wcu_s <= contention.GOALS["peak_wcu_per_s"]


def test_with_slower_answers_the_containers_rounds_follow_their_calls():
    """Calls of 300-600 ms against rounds of a fixed 150 ms: every later slot of a claim passed
    unused while the others planned around it (1.22x the bound, 1,474 writes for 2,000 requests
    at 50 containers). Rounds as long as the calls: within the goal, half the writes."""
    result = contention.run(50, 2_000, seed=1, call_ms=(300, 600))
    assert result.throttled_429 == 0 and result.dead_lettered == 0
    assert result.ratio <= contention.GOALS["ratio"]
    assert result.writes < 1_000


def test_the_cli_prints_one_line_per_count_and_refuses_a_bad_count(capsys):
    assert contention.main(["--containers", "4"]) == 0
    assert capsys.readouterr().out.startswith("4 containers: 2,000 requests in ")
    try:
        contention.main(["--containers", "four"])
    except SystemExit as exit_:
        assert exit_.code == 2
    assert "--containers: whole numbers" in capsys.readouterr().err
    for bad in ("300", "600-300", "0-100", "fast"):
        try:
            contention.main(["--containers", "4", "--call-ms", bad])
        except SystemExit as exit_:
            assert exit_.code == 2
        assert "--call-ms: " in capsys.readouterr().err


def test_the_cli_takes_slower_answers_as_the_docs_show(capsys):
    assert contention.main(["--containers", "4", "--call-ms", "300-600"]) == 0
    assert capsys.readouterr().out.startswith("4 containers: 2,000 requests in ")


def test_make_contention_runs_the_figure_as_the_docs_say():
    import subprocess
    from pathlib import Path

    root = Path(__file__).parents[2]
    assert "`make contention`" in (root / "docs/performance.md").read_text(encoding="utf-8")
    done = subprocess.run(
        ["make", "contention", "ARGS=--containers 4"], cwd=root, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert "4 containers: 2,000 requests in " in done.stdout


def test_on_dynamodb_local_the_model_writes_exactly_what_it_writes_on_simdynamodb(
    dynamodb_endpoint, monkeypatch
):
    """Figure h's write counts on real conditional writes (issue 22: "measure it against DynamoDB
    Local"): the same seed on DynamoDB Local and on SimDynamoDB is the same run, request for
    request (the latencies are drawn alike; DynamoDB Local answers each in the model's order)."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):  # as make bench runs it
        monkeypatch.delenv(name, raising=False)
    sim = contention.run(50, 2_000, seed=2)
    local = contention.run(50, 2_000, seed=2, dynamodb_endpoint=dynamodb_endpoint)
    assert local.writes == sim.writes and local.writes > 2_000 / 10  # a write per batch, and races
    assert (local.drain_s, local.peak_wcu_s, local.peak_rcu_s) == (
        sim.drain_s,
        sim.peak_wcu_s,
        sim.peak_rcu_s,
    )
    assert local.throttled_429 == 0 and local.dead_lettered == 0


def test_the_cli_runs_the_model_on_dynamodb_local_too(dynamodb_endpoint, monkeypatch, capsys):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):  # as make bench runs it
        monkeypatch.delenv(name, raising=False)
    assert contention.main(["--containers", "4", "--dynamodb-endpoint", dynamodb_endpoint]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("4 containers: 2,000 requests in ")
    assert out[1].startswith("  on DynamoDB Local: ") and " writes, peak " in out[1]
