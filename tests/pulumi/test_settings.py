"""Bad stack config stops the program before any resource exists, with a message naming the key."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import pytest

from components.settings import ConfigError
from tests.pulumi.conftest import project_config
from tools.record_stack import ROOT, record_stack

NS = "ngu-points-event-processor"


def _section(stack: str, section: str, **changes: object) -> dict[str, str]:
    value = {**project_config(stack, section), **changes}
    for key, new in changes.items():
        if new is None:
            del value[key]
    return {f"{NS}:{section}": json.dumps(value)}


BAD = [
    pytest.param(
        _section("prod", "thresholds", lambdaErrorRatePercent=None),
        f"{NS}:thresholds.lambdaErrorRatePercent: Field required",
        id="missing-threshold",
    ),
    pytest.param(
        _section("prod", "stream", retentionHours=-1),
        f"{NS}:stream.retentionHours: Input should be greater than or equal to 24",
        id="negative-retention",
    ),
    pytest.param({f"{NS}:stage": "qa"}, f"{NS}:stage: Input should be 'prod', 'staging' or 'dev'", id="unknown-stage"),
    pytest.param(
        _section("prod", "consumer", reservedConcurrency=20),
        f"{NS}:consumer.reservedConcurrency: 20 cannot cover 4 shards x parallelization 10 = 40",
        id="concurrency-below-shards-x-parallelization",
    ),
    pytest.param(
        _section("prod", "consumer", maximumRecordAgeSeconds=86400),
        f"{NS}:consumer.maximumRecordAgeSeconds: 86400 s must be below the stream's retention (86400 s)",
        id="record-age-not-below-retention",
    ),
    pytest.param(
        _section("prod", "consumer", startingPosition="AT_TIMESTAMP"),
        f"{NS}:consumer.startingPosition: Input should be 'TRIM_HORIZON' or 'LATEST'",
        id="unknown-starting-position",
    ),
    pytest.param(
        _section("prod", "stream", shardCount=2),
        f"{NS}:stream.shardCount: an ON_DEMAND stream has no shard count",
        id="shards-on-demand",
    ),
    pytest.param(
        _section("prod", "monitor", contracts=[{"address": "0xNOT", "startBlock": 0}]),
        f"{NS}:monitor.contracts[0].address: String should match pattern",
        id="bad-contract-address",
    ),
    pytest.param(
        _section("prod", "consumer", memoryMB=256),
        f"{NS}:consumer.memoryMB: Extra inputs are not permitted",
        id="misspelt-key",
    ),
    pytest.param({f"{NS}:stage": "staging"}, f"{NS}:stage: staging in stack prod", id="stage-of-another-stack"),
    pytest.param({"aws:region": "mars"}, "aws:region: String should match pattern", id="bad-region"),
    pytest.param({f"{NS}:rpcUrl": None}, f"{NS}:rpcUrl: missing", id="missing-secret"),
    pytest.param(
        _section("prod", "points", perDay={f"1:0x{'b1' * 20}": 10}),
        f"{NS}:points.perDay: no rate for monitor.contracts[0] (1:0x{'0' * 38}a1) and no points.defaultPerDay: "
        "the consumer would quarantine every event of it",
        id="monitored-contract-without-a-rate",
    ),
    pytest.param(
        _section(
            "prod",
            "monitor",
            contracts=[
                {"address": f"0x{'0' * 38}a1", "startBlock": 0},
                {"address": f"0x{'0' * 38}a1", "startBlock": 5},
            ],
        ),
        f"{NS}:monitor.contracts: an address is listed twice (0x{'0' * 38}a1 at [0] and [1])",
        id="contract-listed-twice",
    ),
    pytest.param({f"{NS}:colour": "blue"}, f"{NS}:colour: unknown key (known keys: ", id="unknown-key"),
    pytest.param(
        {f"{NS}:logLevl": "INFO", f"{NS}:logLevel": None},
        f"{NS}:logLevl: unknown key (did you mean logLevel?)",
        id="misspelt-top-level-key",
    ),
    pytest.param(
        _section("prod", "points", defaultPerDay=10**13),
        f"{NS}:points.defaultPerDay: Input should be less than or equal to 1000000000000",
        id="rate-too-large-to-store",
    ),
]


@pytest.mark.parametrize(("override", "message"), BAD)
def test_bad_config_names_the_key(override: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as error:
        record_stack("prod", override)
    assert str(error.value).startswith(message), str(error.value)
    assert "\n" not in str(error.value)


def test_reserved_concurrency_that_covers_the_shards_is_accepted() -> None:
    stack = record_stack("staging", _section("staging", "consumer", reservedConcurrency=40))
    (function,) = stack.of_type("aws:lambda/function:Function")
    assert function.inputs["reservedConcurrentExecutions"] == 40


def test_cli_prints_one_line_and_fails_on_an_unknown_stack() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tools.record_stack", "--stack", "nope"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 1
    assert result.stderr.strip() == "record_stack: --stack nope: no stack file Pulumi.nope.yaml"


def test_concurrency_without_room_for_a_shard_split_warns(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        record_stack("staging", _section("staging", "consumer", reservedConcurrency=45))
    warnings = [r.getMessage() for r in caplog.records if "reservedConcurrency" in r.getMessage()]
    assert warnings == [
        "consumer.reservedConcurrency 45 covers 40 concurrent batches but not one more shard: "
        "when the on-demand stream splits, batches queue and IteratorAge grows"
    ]


def test_seed_concurrency_leaves_room_for_one_split_and_does_not_warn(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        record_stack("staging")
    assert not [r for r in caplog.records if "reservedConcurrency" in r.getMessage()]


def test_a_monitored_contract_rated_by_the_default_alone_is_accepted() -> None:
    stack = record_stack("prod", _section("prod", "points", perDay={}, defaultPerDay=10))
    assert stack.of_type("aws:lambda/function:Function")


def test_unknown_keys_are_found_in_the_environment_the_language_host_sets(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Pulumi CLI's Python language host hands the program its config as PULUMI_CONFIG."""
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps({f"{NS}:colour": "blue", "aws:region": "us-east-1"}))
    with pytest.raises(ConfigError, match=f"^{NS}:colour: unknown key"):
        record_stack("prod")
