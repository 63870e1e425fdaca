"""The whole pipeline on one machine (DESIGN §9): `python -m app demo` (`make demo`).

anvil with the NGU token deployed and some holder activity -> the event monitor, unchanged, as a
subprocess -> Kinesis on moto_server -> the local event source mapping -> the real Lambda handler ->
DynamoDB on moto_server. Then the ledger is checked against a straight replay of the chain's own
Transfer logs, in two rounds (the second resumes from the monitor's checkpoint). Exit 0 only when
the ledger matches the chain.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from app.events import build_event
from app.ledger import HolderPoints, TokenState, transition
from app.local.chain import Chain
from app.local.esm import EventSourceMapping, MappingSettings
from app.local.resources import StageResources, create_stage_resources
from app.local.services import CHAIN_ID, ROOT, Anvil, MotoServer
from app.names import StageNames
from app.ops import decimal_points
from app.store import Store

STAGE = "local"
NAMES = StageNames(STAGE)
STREAM = NAMES.stream
TOKENS = NAMES.tokens_table
POINTS = NAMES.points_table
MONITOR = NAMES.monitor_table
RATE = 10  # points per token per day
CONFIRMATIONS = 2
HOUR = 3600


@dataclass
class Round:
    head: int
    transfers: int
    matches: bool


def run(out: Any = sys.stdout) -> int:
    def say(text: str = "") -> None:
        print(text, file=out, flush=True)

    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="ngu-local-") as scratch:
        moto = stack.enter_context(MotoServer())
        anvil = stack.enter_context(Anvil())
        os.environ.update(moto.env())
        chain = Chain(anvil)
        say(f"local chain   anvil on 127.0.0.1:{anvil.port} (chain {CHAIN_ID}), NGU token {chain.address}")
        say(f"local AWS     moto_server on 127.0.0.1:{moto.port}")
        resources = create_stage_resources(moto.client, NAMES)
        queue_url = resources.queue_url
        config = _monitor_config(Path(scratch), anvil, chain)
        esm = _mapping(moto, resources, chain)
        store = Store(TOKENS, POINTS, client=moto.client("dynamodb"))

        rounds = []
        for number, activity in enumerate((_first_round, _second_round), 1):
            activity(chain)
            chain.mine(CONFIRMATIONS)
            head = chain.head - CONFIRMATIONS
            say()
            say(f"round {number}: {len(chain.transfers)} transfers on chain so far; monitor up to block {head}")
            _run_monitor(config, moto, head)
            if number == 2:
                # A record nobody can apply: it must land in the quarantine, not block the shard.
                moto.client("kinesis").put_record(StreamName=STREAM, Data=b'{"v": 1, "kind"', PartitionKey="junk")
            esm.run_until_idle()
            matches = _report(say, chain, store, esm, moto, queue_url, head)
            rounds.append(Round(head, len(chain.transfers), matches))
        ok = all(r.matches for r in rounds)
        say()
        say("the ledger matches the chain in every round" if ok else "MISMATCH between the ledger and the chain")
        return 0 if ok else 1


def _monitor_config(scratch: Path, anvil: Anvil, chain: Chain) -> Path:
    path = scratch / "monitor.yaml"
    config = {
        "stage": STAGE,
        "chain_id": CHAIN_ID,
        "rpc_url": anvil.ws_url,
        "confirmations": CONFIRMATIONS,
        "contracts": [{"address": chain.address, "start_block": chain.deploy_block}],
        "checkpoint_table": MONITOR,  # the stream name comes from SSM, as on the monitor host
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _run_monitor(config: Path, moto: MotoServer, until: int) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | moto.env()
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        [sys.executable, "-m", "app", "monitor", "--config", str(config), "--until-block", str(until)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        raise RuntimeError(f"monitor exited {done.returncode}: {done.stderr.strip()[-500:]}")


def _mapping(moto: MotoServer, resources: StageResources, chain: Chain) -> EventSourceMapping:
    os.environ.update(
        TOKENS_TABLE=TOKENS,
        POINTS_TABLE=POINTS,
        QUARANTINE_QUEUE_URL=resources.queue_url,
        POINTS_PER_DAY=json.dumps({f"{CHAIN_ID}:{chain.address}": RATE}),
        STAGE=STAGE,
        POWERTOOLS_TRACE_DISABLED="1",
        POWERTOOLS_METRICS_DISABLED="1",
        LOG_LEVEL="WARNING",
    )
    from app import processor  # after the environment: the handler reads it once

    processor.consumer.cache_clear()
    return EventSourceMapping(
        kinesis=moto.client("kinesis"),
        s3=moto.client("s3"),
        stream_name=STREAM,
        handler=processor.handler,
        settings=MappingSettings(),
        failure_bucket=resources.bucket,
    )


def _first_round(chain: Chain) -> None:
    """Five holders, twelve tokens, a day of trading."""
    for token_id in range(1, 13):
        chain.mint(1 + token_id % 5, token_id)
    chain.advance(6 * HOUR)
    chain.transfer(2, 3, 1)
    chain.safe_transfer(3, 4, 2)
    chain.advance(6 * HOUR)
    chain.transfer(4, 1, 3)
    chain.burn(5, 4)
    chain.fungible_transfer(1, 2, 1000)  # an ERC-20-shaped log: ignored by the monitor
    chain.advance(12 * HOUR)


def _second_round(chain: Chain) -> None:
    chain.batch_mint(5, 100, 20)
    chain.advance(2 * HOUR)
    chain.transfer(3, 1, 1)
    chain.transfer(1, 2, 1)
    chain.advance(10 * HOUR)


def _report(
    say, chain: Chain, store: Store, esm: EventSourceMapping, moto: MotoServer, queue_url: str, head: int
) -> bool:
    expected_tokens, expected_points = _replay(chain, head)
    actual_tokens = {
        key: (state.owner, state.acquired_at, state.last_seq)
        for key, state in store.prefetch(expected_tokens).items()
        if state is not None
    }
    actual_points = dict(store.holders())
    matches = actual_tokens == {k: (s.owner, s.acquired_at, s.last_seq) for k, s in expected_tokens.items()}
    matches &= actual_points == expected_points
    at = chain.timestamp(head)
    counters = esm.counters
    quarantined = moto.client("sqs").get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]["ApproximateNumberOfMessages"]
    say(
        f"consumer      {counters.invocations} invocations, {counters.records_delivered} records delivered, "
        f"{quarantined} quarantined, {counters.records_sent_to_destination} sent to S3"
    )
    say(
        f"ledger        {len(actual_tokens)} tokens, {len(actual_points)} holders; matches the chain: {'yes' if matches else 'NO'}"
    )
    say(f"leaderboard at block {head} (t={at}):")
    say("  rank  holder                                            points  tokens")
    for rank, (holder, points, row) in enumerate(store.leaderboard(at=at, limit=5), 1):
        say(f"  {rank:>4}  {holder}  {decimal_points(points):>12}  {row.tokens_held:>6}")
    return matches


def _replay(chain: Chain, head: int) -> tuple[dict[str, TokenState], dict[str, HolderPoints]]:
    """The ledger straight from the chain's Transfer logs up to `head`."""
    tokens: dict[str, TokenState] = {}
    points: dict[str, HolderPoints] = {}
    for t in sorted(chain.transfers, key=lambda t: t.seq):
        if t.block_number > head:
            continue
        event = build_event(
            chain_id=CHAIN_ID,
            contract=chain.address,
            token_id=t.token_id,
            from_address=t.from_address,
            to_address=t.to_address,
            block_number=t.block_number,
            block_hash=t.block_hash,
            block_timestamp=chain.timestamp(t.block_number),
            tx_hash=t.tx_hash,
            tx_index=t.tx_index,
            log_index=t.log_index,
        )
        change = transition(tokens.get(event.token_key), event, RATE)
        tokens[event.token_key] = change.token
        for delta in change.deltas:
            points[delta.holder] = points.get(delta.holder, HolderPoints()).plus(delta)
    return tokens, points
