"""A whole local stage for the operator commands' tests: anvil with the NGU token and some trading,
moto_server with the stage's resources and SSM names (app/local/resources.py), the real monitor
publishing to Kinesis, and the local event source mapping applying records with the real handler."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from app.local.chain import Chain
from app.local.esm import EventSourceMapping, MappingSettings
from app.local.resources import MappingConfig, StageResources, create_stage_resources, register_mapping
from app.local.services import ANVIL, CHAIN_ID, ROOT, Anvil, MotoServer
from app.names import StageNames

RATE = 10
CONFIRMATIONS = 2
HOUR = 3600


@dataclass
class LocalStage:
    moto: MotoServer
    anvil: Anvil
    chain: Chain
    resources: StageResources
    config: Path
    esm: EventSourceMapping
    mapping_uuid: str

    @property
    def names(self) -> StageNames:
        return self.resources.names

    @property
    def stage(self) -> str:
        return self.names.stage

    def confirmed(self) -> int:
        self.chain.mine(CONFIRMATIONS)
        return self.chain.head - CONFIRMATIONS

    def publish(self, until: int) -> None:
        """The real monitor, as a subprocess, publishes every event up to block `until`."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | self.moto.env()
        done = subprocess.run(
            [sys.executable, "-m", "app", "monitor", "--config", str(self.config), "--until-block", str(until)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr[-2000:]

    def consume(self) -> None:
        self.esm.run_until_idle()

    def client(self, service: str):
        return self.moto.client(service)


def trade(chain: Chain) -> None:
    """Five holders, ten tokens (a batch of six), a day of trading and a burn: 14 Transfers."""
    chain.batch_mint(1, 1, 6)
    for token_id, holder in ((7, 2), (8, 3), (9, 4), (10, 5)):
        chain.mint(holder, token_id)
    chain.advance(6 * HOUR)
    chain.transfer(1, 2, 1)
    chain.safe_transfer(1, 3, 2)
    chain.advance(6 * HOUR)
    chain.transfer(2, 4, 7)
    chain.burn(5, 10)
    chain.advance(12 * HOUR)


@contextmanager
def local_stage(stage: str = "local") -> Iterator[LocalStage]:
    if not ANVIL.exists():
        pytest.fail(f"{ANVIL} missing: run `make node` (npm ci)")
    with ExitStack() as stack:
        moto = stack.enter_context(MotoServer())
        anvil = stack.enter_context(Anvil())
        patch = stack.enter_context(pytest.MonkeyPatch.context())
        for key, value in moto.env().items():
            patch.setenv(key, value)
        chain = Chain(anvil)
        names = StageNames(stage)
        resources = create_stage_resources(moto.client, names)
        mapping_uuid = register_mapping(moto.client, resources, MappingConfig())
        scratch = Path(stack.enter_context(_scratch()))
        config = scratch / "monitor.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "stage": stage,
                    "chain_id": CHAIN_ID,
                    "rpc_url": anvil.ws_url,
                    "confirmations": CONFIRMATIONS,
                    "contracts": [{"address": chain.address, "start_block": chain.deploy_block}],
                    "checkpoint_table": names.monitor_table,
                    "points_per_day": {f"{CHAIN_ID}:{chain.address}": RATE},
                }
            )
        )
        patch.setenv("TOKENS_TABLE", names.tokens_table)
        patch.setenv("POINTS_TABLE", names.points_table)
        patch.setenv("QUARANTINE_QUEUE_URL", resources.queue_url)
        patch.setenv("POINTS_PER_DAY", json.dumps({f"{CHAIN_ID}:{chain.address}": RATE}))
        patch.setenv("STAGE", stage)
        patch.setenv("POWERTOOLS_METRICS_DISABLED", "1")
        patch.setenv("LOG_LEVEL", "WARNING")
        from app import processor

        processor.consumer.cache_clear()
        stack.callback(processor.consumer.cache_clear)
        # With POWERTOOLS_METRICS_DISABLED the handler never flushes, so its metrics pile up: drop them.
        stack.callback(processor.metrics.clear_metrics)
        esm = EventSourceMapping(
            kinesis=moto.client("kinesis"),
            s3=moto.client("s3"),
            stream_name=names.stream,
            handler=processor.handler,
            settings=MappingSettings(),
            failure_bucket=resources.bucket,
            mapping_id=mapping_uuid,
        )
        yield LocalStage(moto, anvil, chain, resources, config, esm, mapping_uuid)


@contextmanager
def _scratch() -> Iterator[str]:
    import tempfile

    with tempfile.TemporaryDirectory(prefix="ngu-ops-") as path:
        yield path
