"""`python -m app backfill --config MONITOR_CONFIG --from-block A --to-block B [--json]`: publish a
historical block range through the monitor's own range reader (the same completeness proofs) and
its configured sink, without touching the live checkpoint.

It replaces the hand edit of the checkpoint item (docs/operations.md §4): the running monitor goes
on where it is, and the range is read and published beside it. Re-publishing is safe: the consumer
skips every event at or below a token's `lastSeq`. Its own progress lives in memory only, so an
interrupted backfill is simply run again.

Exit status: 0 published, 1 something missing (the node, AWS, the stream), 2 bad input.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import sys
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the monitor's modules are imported when the command runs, not when its --help is built
    from app.events import ChainEvent
    from app.monitor.checkpoint import Ticket
    from app.monitor.config import Settings
    from app.monitor.rpc import JsonRpc
    from app.monitor.service import Sink


class Missing(Exception):
    """Something the backfill needs does not answer or does not exist: exit 1."""


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Publish blocks A..B (inclusive, confirmed) through the monitor's range reader - every range "
        "proven complete as the live monitor proves it - to the sink its config names (Kinesis or the "
        "tables). The live checkpoint is neither read nor written: the running monitor is unaffected, "
        "and the consumer skips what it already applied. Exit 0 done, 1 missing (node, AWS, stream), "
        "2 bad input."
    )
    parser.add_argument("--config", required=True, metavar="MONITOR_CONFIG", help="the monitor's YAML config")
    parser.add_argument("--from-block", required=True, type=_block, metavar="A", help="first block to publish")
    parser.add_argument("--to-block", required=True, type=_block, metavar="B", help="last block (confirmed)")
    parser.add_argument("--json", action="store_true", help="print what was published as one JSON object")


def _block(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a block number, got {text!r}")
    return int(text)


def run(args: argparse.Namespace) -> int:
    from app.monitor.config import ConfigError, load_config
    from app.monitor.service import ForkNotFound
    from app.monitor.startup import Unreachable
    from app.monitor.telemetry import logger

    logger.setLevel(logging.WARNING)
    for handler in logger.handlers:  # stdout is for the result; warnings go to stderr
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(sys.stderr)
    try:
        if args.from_block > args.to_block:
            raise ConfigError(f"--from-block: {args.from_block} is after --to-block {args.to_block}")
        config = load_config(args.config)
        report = asyncio.run(_backfill(config, args.from_block, args.to_block))
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (Missing, Unreachable, ForkNotFound) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(report))
    else:
        print(
            f"published {report['events']} events of blocks {report['from_block']}..{report['to_block']} "
            f"to {report['sink']} {report['destination']} (live checkpoint untouched)"
        )
    return 0


async def _backfill(config: Any, first: int, last: int) -> dict[str, Any]:
    from app import aws
    from app.monitor.checkpoint import Checkpoint, MemoryCheckpointStore
    from app.monitor.command import sink_for
    from app.monitor.config import resolve
    from app.monitor.rpc import JsonRpc
    from app.monitor.service import Monitor, install_signal_handlers
    from app.monitor.telemetry import Telemetry
    from app.progress import progress_bar

    settings = await asyncio.to_thread(resolve, config, aws.client("ssm"))
    # No WebSocket: a historical range needs no doorbell.
    settings = dataclasses.replace(settings, rpc_url=settings.http_rpc_url)
    telemetry = Telemetry(aws.client("cloudwatch"), config.stage)
    await asyncio.to_thread(_check_destination, settings)
    sink = Recording(sink_for(settings, telemetry))
    started = time.monotonic()
    async with JsonRpc(settings.http_rpc_url) as rpc:
        parent = await _parent_hash(rpc, settings, first, last)
        start = Checkpoint(first - 1, parent, ((first - 1, parent),) if parent else ())
        with progress_bar("backfill (blocks)", last - first + 1) as advance:
            done = [first - 1]

            def advanced(checkpoint: Checkpoint) -> None:
                advance(checkpoint.block - done[0])
                done[0] = checkpoint.block

            monitor = Monitor(
                settings,
                rpc=rpc,
                sink=sink,
                store=MemoryCheckpointStore(start),
                telemetry=telemetry,
                until_block=last,
                on_checkpoint=advanced,
            )
            install_signal_handlers(monitor.stop)
            await monitor.run()
    published_through = monitor.progress.checkpoint.block
    if published_through < last:
        raise Missing(f"--to-block: stopped at block {published_through} before {last} (interrupted)")
    return {
        "from_block": first,
        "to_block": last,
        "events": len(sink.ids),
        "sink": config.sink,
        "destination": settings.stream_name if config.sink == "kinesis" else config.tokens_table,
        "seconds": round(time.monotonic() - started, 3),
        "event_ids": sink.ids,
    }


async def _parent_hash(rpc: JsonRpc, settings: Settings, first: int, last: int) -> str | None:
    """The hash of block `first - 1` (the range must chain to it); checks `last` is confirmed."""
    from app.monitor.config import ConfigError, redact
    from app.monitor.rpc import RpcError, RpcUnavailable

    where = redact(settings.http_rpc_url)
    try:
        head = int(await rpc.call("eth_blockNumber"), 16)
        confirmed = head - settings.config.confirmations
        if last > confirmed:
            raise ConfigError(
                f"--to-block: {last} is not confirmed yet (head {head}, confirmations {settings.config.confirmations})"
            )
        if first == 0:
            return None
        header = await rpc.call("eth_getBlockByNumber", [hex(first - 1), False])
        return header["hash"].lower()
    except (RpcUnavailable, RpcError, TypeError, KeyError, ValueError) as error:
        raise Missing(f"rpc_url: node at {where} unusable ({error})") from None


def _check_destination(settings: Settings) -> None:
    """Every place the sink writes to exists: the stream, or the tables and the quarantine queue."""
    from botocore.exceptions import BotoCoreError, ClientError

    from app import aws

    config = settings.config
    if config.sink == "kinesis":
        kinesis = aws.client("kinesis")
        checks = [
            (
                "stream_name",
                settings.stream_name,
                lambda: kinesis.describe_stream_summary(StreamName=settings.stream_name),
            )
        ]
    else:
        dynamodb, sqs = aws.client("dynamodb"), aws.client("sqs")
        url = settings.quarantine_queue_url
        checks = [
            ("tokens_table", config.tokens_table, lambda: dynamodb.describe_table(TableName=config.tokens_table)),
            ("points_table", config.points_table, lambda: dynamodb.describe_table(TableName=config.points_table)),
            ("quarantine_queue_url", url, lambda: sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])),
        ]
    for key, name, check in checks:
        try:
            check()
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "error")
            raise Missing(f"{key}: cannot use {name} ({code})") from None
        except BotoCoreError as error:
            raise Missing(f"aws: unreachable ({type(error).__name__})") from None


class Recording:
    """The configured sink, remembering the id of each event it was handed (acknowledged by the
    end of the run: the monitor drains the sink before it returns)."""

    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self.ids: list[str] = []

    async def submit(self, event: ChainEvent, ticket: Ticket) -> None:
        await self.sink.submit(event, ticket)
        self.ids.append(event.id)

    async def drain(self) -> None:
        await self.sink.drain()

    async def run(self) -> None:
        await self.sink.run()
