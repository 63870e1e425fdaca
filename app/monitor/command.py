"""`python -m app monitor`: build the monitor from its config file and run it until stopped.

Exit status: 0 after a clean stop (SIGTERM, or --until-block reached), 2 for a configuration error
(systemd does not restart it: see deploy/ngu-points-monitor.service), 1 when it cannot start.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoRegionError

from app import aws
from app.aws import RETRY_CONFIG
from app.monitor.checkpoint import CheckpointStore, DynamoCheckpointStore, FileCheckpointStore
from app.monitor.config import ConfigError, Settings, load_config, resolve
from app.monitor.dynamodb_sink import DynamoDBSink
from app.monitor.publisher import KinesisPublisher
from app.monitor.rpc import JsonRpc
from app.monitor.service import Monitor, StartupError, install_signal_handlers
from app.monitor.telemetry import Telemetry, logger
from app.store import Store

# Adaptive retries for whole-call throttling; per-record failures are the publisher's to retry.
# Parameter validation is off for Kinesis only: the publisher builds every request itself and it
# costs more CPU than the call at thousands of records a second.
KINESIS_CONFIG = RETRY_CONFIG.merge(Config(parameter_validation=False, max_pool_connections=20))


def main(config_path: str, until_block: int | None = None) -> int:
    try:
        config = load_config(Path(config_path))
        return asyncio.run(_run(config, until_block))
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except StartupError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except NoRegionError:
        print("error: AWS_REGION: not set (needed for SSM, Kinesis, DynamoDB, CloudWatch)", file=sys.stderr)
        return 1
    except Exception as error:
        logger.exception("monitor failed")
        print(f"error: monitor failed: {error!r}", file=sys.stderr)
        return 1


async def _run(config, until_block: int | None) -> int:
    settings = resolve(config, aws.client("ssm"))
    telemetry = Telemetry(aws.client("cloudwatch"), config.stage)
    store = _checkpoint_store(settings)
    sink = _sink(settings, telemetry)
    async with JsonRpc(settings.http_rpc_url) as rpc:
        monitor = Monitor(settings, rpc=rpc, sink=sink, store=store, telemetry=telemetry, until_block=until_block)
        await monitor.start_checks()
        await asyncio.to_thread(_check_stores, settings, store)
        install_signal_handlers(monitor)
        await monitor.run()
    return 0


def _checkpoint_store(settings: Settings) -> CheckpointStore:
    config = settings.config
    if config.checkpoint_file is not None:
        return FileCheckpointStore(config.checkpoint_file, config.chain_id)
    return DynamoCheckpointStore(aws.client("dynamodb"), config.checkpoint_table, config.chain_id)


def _sink(settings: Settings, telemetry: Telemetry) -> KinesisPublisher | DynamoDBSink:
    config = settings.config
    if config.sink == "dynamodb":
        store = Store(config.tokens_table, config.points_table)
        return DynamoDBSink(store, config.rates(), telemetry, max_pending=config.max_pending_records)
    kinesis = aws.client("kinesis", config=KINESIS_CONFIG)
    return KinesisPublisher(
        kinesis,
        settings.stream_name,
        telemetry,
        max_pending=config.max_pending_records,
        concurrency=config.publish_concurrency,
    )


def _check_stores(settings: Settings, store: CheckpointStore) -> None:
    """Name the key when the stream or a table does not exist, rather than retrying forever."""
    config = settings.config
    try:
        store.load()
    except ClientError as error:
        raise ConfigError(f"checkpoint_table: cannot read {config.checkpoint_table} ({_code(error)})") from None
    except (ValueError, OSError) as error:
        raise ConfigError(f"checkpoint_file: {error}") from None
    except BotoCoreError as error:
        raise StartupError(f"checkpoint_table: AWS unreachable ({type(error).__name__})") from None
    if config.sink == "kinesis":
        try:
            aws.client("kinesis").describe_stream_summary(StreamName=settings.stream_name)
        except ClientError as error:
            raise ConfigError(f"stream_name: cannot use stream {settings.stream_name} ({_code(error)})") from None
        except BotoCoreError as error:
            raise StartupError(f"stream_name: AWS unreachable ({type(error).__name__})") from None


def _code(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Code", "error")
