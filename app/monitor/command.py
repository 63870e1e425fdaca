"""`python -m app monitor`: build the monitor from its config file and run it until stopped.

Exit status: 0 after a clean stop (SIGTERM, or --until-block reached), 2 for a configuration error
(systemd does not restart it: see deploy/ngu-points-monitor.service), 1 for a fatal error (the node
answers nonsense, a deep reorg whose fork cannot be proven). An unreachable node or AWS at start-up
is waited for (app/monitor/startup.py), never an exit.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoRegionError

from app import aws
from app.aws import RETRY_CONFIG
from app.monitor.backoff import Backoff
from app.monitor.checkpoint import Checkpoint, CheckpointStore, DynamoCheckpointStore, FileCheckpointStore
from app.monitor.config import ConfigError, MonitorConfig, Settings, load_config, resolve
from app.monitor.publisher import KinesisPublisher
from app.monitor.rpc import JsonRpc, RpcUnavailable
from app.monitor.service import ForkNotFound, Monitor, StartupError, install_signal_handlers
from app.monitor.startup import Unreachable, Waiter
from app.monitor.telemetry import Telemetry, logger

if TYPE_CHECKING:
    from app.monitor.dynamodb_sink import DynamoDBSink

# Adaptive retries for whole-call throttling; per-record failures are the publisher's to retry.
# Parameter validation is off for Kinesis only: the publisher builds every request itself and it
# costs more CPU than the call at thousands of records a second.
KINESIS_CONFIG = RETRY_CONFIG.merge(Config(parameter_validation=False, max_pool_connections=20))


class LazyClient:
    """An AWS client made on first use. Making one loads its service model (tens of ms each):
    the clients not needed before the first eth_getLogs (CloudWatch, SSM when the file names
    everything, Kinesis) are made off that path, in the threads that first call them."""

    def __init__(self, service: str, **kwargs: Any) -> None:
        self._service = service
        self._kwargs = kwargs
        self._client: Any = None
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = aws.client(self._service, **self._kwargs)
        return getattr(self._client, name)


def main(config_path: str, until_block: int | None = None) -> int:
    try:
        config = load_config(Path(config_path))
        return asyncio.run(_run(config, until_block))
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (StartupError, ForkNotFound) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except NoRegionError:
        print("error: AWS_REGION: not set (needed for SSM, Kinesis, DynamoDB, CloudWatch)", file=sys.stderr)
        return 1
    except Exception as error:
        logger.exception("monitor failed")
        print(f"error: monitor failed: {error!r}", file=sys.stderr)
        return 1


def waiter_for(config: MonitorConfig, telemetry: Telemetry, stopping: asyncio.Event) -> Waiter:
    return Waiter(
        telemetry,
        stopping,
        backoff=Backoff(base=0.5, cap=config.startup_backoff_cap_seconds),
        transient=(RpcUnavailable, BotoCoreError),
    )


async def _run(config: MonitorConfig, until_block: int | None) -> int:
    stopping = asyncio.Event()
    install_signal_handlers(stopping.set)
    telemetry = Telemetry(LazyClient("cloudwatch"), config.stage)
    waiter = waiter_for(config, telemetry, stopping)
    ssm = LazyClient("ssm")
    settings = await waiter.until_ready("aws", "SSM", lambda: asyncio.to_thread(resolve, config, ssm))
    if settings is None:
        return 0
    if settings.websocket_url:
        telemetry.gauge("WebSocketConnected", lambda: 0)  # until the subscription is up
    store = _checkpoint_store(settings)
    sink = sink_for(settings, telemetry)
    async with JsonRpc(settings.http_rpc_url) as rpc:
        monitor = Monitor(
            settings, rpc=rpc, sink=sink, store=store, telemetry=telemetry, until_block=until_block, stopping=stopping
        )
        # The node and the checkpoint are on the path to the first eth_getLogs: checked side by
        # side. The stream is checked beside the reading (PutRecords to a missing stream only
        # fails and is retried; the check stops the monitor with exit status 2).
        node_ready, stored = await asyncio.gather(
            monitor.start_checks(waiter),
            waiter.until_ready("aws", "DynamoDB", lambda: asyncio.to_thread(_load_checkpoint, settings, store)),
        )
        if not node_ready or stopping.is_set():
            return 0
        what = "Kinesis" if config.sink == "kinesis" else "SQS"
        sink_ready = waiter.until_ready("aws", what, lambda: asyncio.to_thread(_check_sink, settings, sink))
        await monitor.run(stored, loaded=True, checks=[sink_ready])
    return 0


def _checkpoint_store(settings: Settings) -> CheckpointStore:
    config = settings.config
    if config.checkpoint_file is not None:
        return FileCheckpointStore(config.checkpoint_file, config.chain_id)
    # Made where it is first read (in a thread, beside the node's first answers): loading the
    # DynamoDB model is ~60 ms of the start-up.
    return DynamoCheckpointStore(LazyClient("dynamodb"), config.checkpoint_table, config.chain_id)


def sink_for(settings: Settings, telemetry: Telemetry) -> KinesisPublisher | DynamoDBSink:
    config = settings.config
    if config.sink == "dynamodb":
        from app.monitor.dynamodb_sink import DynamoDBSink  # the rollback path: off the usual start-up
        from app.store import Store

        store = Store(config.tokens_table, config.points_table)
        sqs = LazyClient("sqs")
        return DynamoDBSink(
            store, config.rates(), telemetry, sqs, settings.quarantine_queue_url, max_pending=config.max_pending_records
        )
    kinesis = LazyClient("kinesis", config=KINESIS_CONFIG)
    return KinesisPublisher(
        kinesis,
        settings.stream_name,
        telemetry,
        max_pending=config.max_pending_records,
        concurrency=config.publish_concurrency,
    )


def _load_checkpoint(settings: Settings, store: CheckpointStore) -> Checkpoint | None:
    """The stored checkpoint. Names the key when the table does not exist, rather than retrying
    forever; an unreachable AWS is Unreachable (waited for)."""
    config = settings.config
    try:
        return store.load()
    except ClientError as error:
        raise ConfigError(f"checkpoint_table: cannot read {config.checkpoint_table} ({_code(error)})") from None
    except (ValueError, OSError) as error:
        raise ConfigError(f"checkpoint_file: {error}") from None
    except BotoCoreError as error:
        raise Unreachable(f"checkpoint_table: AWS unreachable ({type(error).__name__})") from None


def _check_sink(settings: Settings, sink: KinesisPublisher | DynamoDBSink) -> bool:
    """True when the sink can publish: the stream exists (for the direct sink: its quarantine queue).
    Asked through the sink's own client, which is then made before its first call."""
    if not isinstance(sink, KinesisPublisher):
        return _check_quarantine(settings, sink)
    try:
        sink.client.describe_stream_summary(StreamName=settings.stream_name)
    except ClientError as error:
        raise ConfigError(f"stream_name: cannot use stream {settings.stream_name} ({_code(error)})") from None
    except BotoCoreError as error:
        raise Unreachable(f"stream_name: AWS unreachable ({type(error).__name__})") from None
    return True


def _check_quarantine(settings: Settings, sink: DynamoDBSink) -> bool:
    """The direct sink sets events that can never apply aside there: a wrong URL stops it now, not at
    the first such event."""
    url = settings.quarantine_queue_url
    try:
        sink.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    except ClientError as error:
        raise ConfigError(f"quarantine_queue_url: cannot use queue {url} ({_code(error)})") from None
    except BotoCoreError as error:
        raise Unreachable(f"quarantine_queue_url: AWS unreachable ({type(error).__name__})") from None
    return True


def _code(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Code", "error")
