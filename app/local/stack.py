"""The whole pipeline on one machine (DESIGN §9): `python -m app demo [--quick]` (`make demo`).

anvil with the NGU token and holders trading over simulated days -> the event monitor, unchanged,
following the chain as on its host -> Kinesis on moto_server -> the event source mapping registered
in moto (settings from the stack file), emulated -> the real Lambda handler in its own execution
environments -> DynamoDB on moto_server. Faults on the way: the monitor SIGKILLed and restarted, a
stretch of records delivered twice, a poison record. At the end a leaderboard and the check of the
ledger against the chain; exit 0 only when everything matches, each mismatch printed otherwise.

SIGINT / SIGTERM at any moment stop every process the demo started; the exit status is 130 / 143.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, TextIO

import yaml

from app.errors import OperatorError
from app.local.chain import Chain
from app.local.esm import EventSourceMapping
from app.local.faults import Faults
from app.local.functions import ExecutionEnvironments
from app.local.monitor_process import MonitorProcess
from app.local.progress import ProgressView, Snapshot
from app.local.resources import create_stage_resources, register_mapping
from app.local.scenario import FULL, QUICK, Activity, Size
from app.local.services import CHAIN_ID, ROOT, Anvil, MotoServer, start_process, wait_until
from app.local.signals import Stopped, StopSignals, shielded
from app.local.stack_settings import consumer_settings, mapping_config
from app.monitor.checkpoint import DynamoCheckpointStore
from app.names import StageNames
from app.ops import decimal_points
from app.store import Store

STAGE = "local"
NAMES = StageNames(STAGE)
RATE = 10  # points per token per day
CONFIRMATIONS = 2


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help="today's small size (5 holders, 12 tokens), for tests")
    parser.add_argument(
        "--keep-running",
        action="store_true",
        help="after a clean check, keep the stack up (for `--stage local` commands) until SIGINT / SIGTERM",
    )


def run(quick: bool = False, keep_running: bool = False, out: TextIO = sys.stdout) -> int:
    with StopSignals():
        try:
            return Demo(QUICK if quick else FULL, out).run(keep_running)
        except Stopped as stop:
            print(f"stopped       by {stop}: every process the demo started is stopped", file=out, flush=True)
            return stop.exit_status
        except OperatorError as error:
            print(f"error: {error}", file=sys.stderr)
            return error.code


class Demo:
    def __init__(self, size: Size, out: TextIO) -> None:
        self.size = size
        self.out = out
        self.started = time.monotonic()

    def say(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def run(self, keep_running: bool) -> int:
        consumer = consumer_settings()  # a bad stack file stops the demo before anything starts
        with ExitStack() as stack:
            scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ngu-local-")))
            moto = stack.enter_context(MotoServer())
            self.say(f"local AWS     moto_server on 127.0.0.1:{moto.port} (pid {moto.process.pid})")
            anvil = stack.enter_context(Anvil(extra=["--accounts", str(self.size.holders + 1)]))
            chain = Chain(anvil)
            self.say(
                f"local chain   anvil on 127.0.0.1:{anvil.port} (pid {anvil.process.pid}, chain {CHAIN_ID}), "
                f"NGU token {chain.address}"
            )
            resources = create_stage_resources(moto.client, NAMES)
            function_environment = self._function_environment(
                resources.queue_url, chain, consumer.remaining_time_guard_ms
            )
            mapping_id = register_mapping(moto.client, resources, mapping_config(consumer), function_environment)
            environments = stack.enter_context(
                ExecutionEnvironments(
                    "app.processor.handler",
                    moto.env()
                    | function_environment,  # the emulator's endpoint and credentials, as Lambda's role gives
                    # Lambda would run up to shards x factor at once, within the reserved concurrency;
                    # more processes than this machine runs at once would only wait for a core.
                    size=min(consumer.reserved_concurrency, 2 * (os.cpu_count() or 1), self.size.environments),
                    log=scratch / "function.log",
                )
            )
            esm = stack.enter_context(EventSourceMapping.from_registered(moto.client, mapping_id, environments))
            self.say(
                f"mapping       {mapping_id} from Pulumi.staging.yaml: {len(esm.cursors)} shards, "
                f"batch {esm.settings.batch_size}, parallelization {esm.settings.parallelization_factor}, "
                f"retries {esm.settings.maximum_retry_attempts}, max age {esm.settings.maximum_record_age_seconds}s; "
                f"{environments.size} execution environments"
            )
            mapping_alive = stack.enter_context(_background(esm.run, "mapping"))
            config = self._monitor_config(scratch, anvil, chain)
            monitor = stack.enter_context(MonitorProcess(config, moto.env(), scratch / "monitor.log"))
            self.say(f"monitor       following the chain (pid {monitor.pid}), checkpoints in {NAMES.monitor_table}")
            checkpoints = DynamoCheckpointStore(moto.client("dynamodb"), NAMES.monitor_table, CHAIN_ID)
            kinesis = moto.client("kinesis")
            activity = Activity(chain, self.size)
            self.say(
                f"scenario      {self.size.holders} holders, {self.size.tokens} tokens, ~{self.size.transfers} transfers "
                f"and burns over {self.size.days} simulated days"
            )
            monitor_state = ["running"]

            def snapshot() -> Snapshot:
                saved = checkpoints.load()
                counters = esm.counters
                return Snapshot(
                    head=chain.latest_block,
                    checkpoint=saved.block if saved else chain.deploy_block,
                    published=counters.records_fetched,
                    applied=counters.records_delivered,
                    failed=counters.records_sent_to_destination,
                    monitor=monitor_state[0],
                )

            with ProgressView(snapshot, self.out) as view:
                faults = Faults(
                    self.size.blocks, view.note, monitor, monitor_state, checkpoints, kinesis, esm, NAMES.stream
                )

                def on_block(number: int, total: int) -> None:
                    monitor.check()
                    mapping_alive()
                    faults.at(number)

                trading = time.monotonic()
                activity.run(on_block)
                chain.mine(CONFIRMATIONS)
                final = chain.head - CONFIRMATIONS
                draining = time.monotonic()
                view.note(
                    f"chain         done: {len(chain.transfers)} transfers up to block {final} in "
                    f"{draining - trading:.1f} s; draining"
                )
                self._drain(monitor, checkpoints, esm, final, mapping_alive)
                view.note(
                    f"drained       every record applied {time.monotonic() - draining:.1f} s after the last block"
                )
            store = Store(NAMES.tokens_table, NAMES.points_table, client=moto.client("dynamodb"))
            ok = self._report(chain, store, esm, moto, resources.queue_url, final, config, faults)
            self.say(f"took          {time.monotonic() - self.started:.1f} s")
            if keep_running and ok:
                self._wait_for_stop(moto)
            return 0 if ok else 1

    def _function_environment(self, queue_url: str, chain: Chain, guard_ms: int) -> dict[str, str]:
        return {
            "TOKENS_TABLE": NAMES.tokens_table,
            "POINTS_TABLE": NAMES.points_table,
            "QUARANTINE_QUEUE_URL": queue_url,
            "POINTS_PER_DAY": json.dumps({f"{CHAIN_ID}:{chain.address}": RATE}),
            "REMAINING_TIME_GUARD_MS": str(guard_ms),
            "STAGE": STAGE,
            "POWERTOOLS_TRACE_DISABLED": "1",
            "POWERTOOLS_METRICS_DISABLED": "1",
            "LOG_LEVEL": "WARNING",
        }

    def _monitor_config(self, scratch: Path, anvil: Anvil, chain: Chain) -> Path:
        path = scratch / "monitor.yaml"
        config = {
            "stage": STAGE,
            "chain_id": CHAIN_ID,
            "rpc_url": anvil.ws_url,
            "confirmations": CONFIRMATIONS,
            "contracts": [{"address": chain.address, "start_block": chain.deploy_block}],
            "checkpoint_table": NAMES.monitor_table,  # the stream name comes from SSM, as on the monitor host
        }
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path

    def _drain(self, monitor, checkpoints, esm: EventSourceMapping, final: int, mapping_alive) -> None:
        def monitor_caught_up() -> bool:
            monitor.check()
            saved = checkpoints.load()
            return saved is not None and saved.block >= final

        def mapping_done() -> bool:
            mapping_alive()
            return esm.last_quiet_pass > caught_up

        wait_until(monitor_caught_up, 120, interval=0.1, what=f"the monitor's checkpoint to reach block {final}")
        caught_up = time.monotonic()
        wait_until(mapping_done, 120, interval=0.05, what="the mapping to apply every record")

    def _report(self, chain, store, esm, moto, queue_url, final, config, faults) -> bool:
        counters = esm.counters
        sqs = moto.client("sqs")
        quarantined = int(
            sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"][
                "ApproximateNumberOfMessages"
            ]
        )
        self.say()
        self.say(
            f"consumer      {counters.invocations} invocations (up to {counters.max_batches_in_flight} batches in "
            f"flight), {counters.records_delivered} records handled, {quarantined} quarantined, "
            f"{counters.records_sent_to_destination} sent to S3"
        )
        self.say(
            f"faults        monitor SIGKILLed at block {faults.killed_at} and restarted; {faults.redelivered} "
            f"records delivered twice; {faults.poison} poison record"
        )
        at = chain.timestamp(final)
        self.say(f"leaderboard   at block {final} (t={at}):")
        self.say("  rank  holder                                            points  tokens")
        for rank, (holder, points, row) in enumerate(store.leaderboard(at=at, limit=10), 1):
            self.say(f"  {rank:>4}  {holder}  {decimal_points(points):>12}  {row.tokens_held:>6}")
        problems = []
        if quarantined != faults.poison:
            problems.append(f"quarantine: {quarantined} messages, expected {faults.poison} (the poison record)")
        if counters.records_sent_to_destination:
            problems.append(f"on-failure destination: {counters.records_sent_to_destination} records, expected 0")
        problems += self._reconcile(config, moto, chain)
        for problem in problems:
            self.say(f"MISMATCH      {problem}")
        self.say("the ledger matches the chain" if not problems else f"{len(problems)} mismatches")
        return not problems

    def _reconcile(self, config: Path, moto: MotoServer, chain: Chain) -> list[str]:
        """The product's own check, as an operator runs it: owners against ownerOf, points against a
        recomputation from the chain's logs; it prints each mismatch itself."""
        command = [sys.executable, "-m", "app", "reconcile", "--config", str(config), "--stage", STAGE]
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | moto.env()
        env |= {"PYTHONPATH": str(ROOT), "POINTS_PER_DAY": json.dumps({f"{CHAIN_ID}:{chain.address}": RATE})}
        self.say(f"check         {' '.join(['python', *command[1:]])}")
        process = None
        try:
            with shielded():  # a signal held here is raised at the block's end: the finally stops the child
                process = start_process(
                    command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
                )
            output, _ = process.communicate(timeout=300)
        finally:
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
        for line in output.strip().splitlines():
            self.say(f"  {line}")
        return [] if process.returncode == 0 else [f"reconcile exited {process.returncode}"]

    def _wait_for_stop(self, moto: MotoServer) -> None:
        self.say(
            f"stack up      AWS_ENDPOINT_URL={moto.endpoint} AWS_REGION={moto.env()['AWS_REGION']}: "
            f"try `python -m app leaderboard --stage {STAGE}`; Ctrl-C stops everything"
        )
        while True:
            time.sleep(3600)  # until SIGINT / SIGTERM raises Stopped


@contextmanager
def _background(loop: Callable[[threading.Event], Any], name: str) -> Iterator[Callable[[], None]]:
    """Run `loop(stop)` in a thread; yields a check that raises if the loop died. On the way out,
    set `stop` and wait for the loop to end."""
    stop = threading.Event()
    failure: list[BaseException] = []

    def target() -> None:
        try:
            loop(stop)
        except BaseException as error:  # surfaced in the main thread at the end
            failure.append(error)

    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()

    def alive() -> None:
        if failure:
            raise RuntimeError(f"{name} failed: {failure[0]!r}") from failure[0]

    try:
        yield alive
    finally:
        stop.set()
        thread.join(60)
    alive()
