"""`reconcile --config MONITOR_CONFIG [--stage S | --tokens-table T --points-table P] [--to-block N] [--fix] [--json]`

Checks the tokens and points tables against the chain, up to a block that is confirmed and already
published (default: the monitor's checkpoint; else the confirmed head):
  - every token's owner, acquiredAt and lastSeq against the chain's Transfer logs, and every token's
    owner on chain (`ownerOf`, batched JSON-RPC) against those logs;
  - every holder's integer attributes against a recomputation from the logs with app/ledger.py.
The chain and contracts come from the monitor's config file; the rates from its points_per_day /
default_points_per_day, else POINTS_PER_DAY / DEFAULT_POINTS_PER_DAY as the Lambda reads them (this
shell's environment, else with --stage the processor function's own environment).
Exit 0 consistent; 1 with one line per mismatch (token key or holder address, table value, chain
value); 2 bad input.

--fix writes the recomputed items, each only if it has not changed since it was read (the consumer
may keep running), re-checks, and exits 0 only if clean. It never repairs from a history the node
cannot vouch for: a token owned on chain with no Transfer in the logs stops it, naming the node and
the block range. Publishes the `Inconsistencies` metric and marks the monitor's `reorg:*` items up
to the reconciled block as reconciled once the tables are clean.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from app import aws
from app import names as n
from app.errors import OperatorError
from app.monitor.config import ConfigError, MonitorConfig, http_url_of, load_config
from app.progress import progress_bar
from app.rates import Rates
from app.reconcile_chain import ChainClient, ChainError, History
from app.reconcile_check import Reconciler, Verdict
from app.reconcile_model import MissingRate, TokenHistory, histories
from app.reconcile_tables import Tables
from app.stage import environment_rates, function_environment, resolve, stage_argument
from app.store import Store

NAMESPACE = "NGUPoints/Reconciler"
METRIC = "Inconsistencies"
FIX_ROUNDS = 3


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--config", required=True, metavar="FILE", help="the monitor's YAML config (DESIGN §10)")
    stage_argument(parser)
    parser.add_argument("--tokens-table", help="overrides --stage's; default: $TOKENS_TABLE")
    parser.add_argument("--points-table", help="overrides --stage's; default: $POINTS_TABLE")
    parser.add_argument(
        "--monitor-table",
        help="the monitor's state table (checkpoint, reorg items); default: --stage's, else the config's checkpoint_table",
    )
    parser.add_argument(
        "--to-block",
        type=_block,
        metavar="N",
        help="reconcile up to block N (default: the monitor's checkpoint, else the confirmed head)",
    )
    parser.add_argument("--fix", action="store_true", help="repair what differs (conditionally), then re-check")
    parser.add_argument("--json", action="store_true", help="print the report as one JSON document")


def _block(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a block number, got {text!r}")
    return int(text)


def run(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
    except ConfigError as error:
        raise OperatorError(f"--config {error}") from None
    rates = _rates(args, config)
    store = Store(
        resolve(args, n.TOKENS_TABLE_PARAMETER, "--tokens-table"),
        resolve(args, n.POINTS_TABLE_PARAMETER, "--points-table"),
    )
    chain = ChainClient(config, _http_url(config))
    monitor_table = _monitor_table(args, config)
    try:
        head = chain.run(lambda c: c.head())
        confirmed = head - config.confirmations
        to_block = _to_block(args, config, monitor_table, confirmed)
        first = min(c.start_block for c in config.contracts)
        with progress_bar("reading Transfer logs", total=max(0, confirmed - first + 1)) as advance:
            history = chain.run(lambda c: c.history(confirmed, advance))
        tokens = _histories(history, rates)
        _check_history_complete(chain, Tables(store), tokens, history, to_block, _prefixes(config))
    except ChainError as error:
        raise OperatorError(str(error), code=1) from None

    reconciler = Reconciler(Tables(store), tokens, to_block, _prefixes(config))
    found = reconciler.check()
    _publish(args, config, found)
    final, fixed = found, []
    rounds = 0
    while args.fix and not final.clean and rounds < FIX_ROUNDS:
        rounds += 1
        fixed += reconciler.fix(final)
        final = reconciler.check()
    reorgs = _mark_reorgs(monitor_table, config.chain_id, to_block) if final.clean else []
    _report(args, found, final, fixed, reorgs)
    return 0 if final.clean else 1


def _rates(args: argparse.Namespace, config: MonitorConfig) -> Rates:
    if config.points_per_day or config.default_points_per_day is not None:
        rates = config.rates()
        source = "the config's points_per_day"
    else:
        rates = environment_rates(function_environment(args))
        source = "POINTS_PER_DAY / DEFAULT_POINTS_PER_DAY"
    for contract in config.contracts:
        key = f"{config.chain_id}:{contract.address}"
        if rates.weight(key) is None:
            raise OperatorError(f"points rate: none for {key} in {source}, and no default")
    return rates


def _http_url(config: MonitorConfig) -> str:
    if config.http_rpc_url:
        return config.http_rpc_url
    url = config.rpc_url
    if url is None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            url = aws.client("ssm").get_parameter(Name=config.rpc_url_parameter, WithDecryption=True)["Parameter"][
                "Value"
            ]
        except (BotoCoreError, ClientError) as error:
            raise OperatorError(
                f"rpc_url_parameter: cannot read SSM parameter {config.rpc_url_parameter} ({type(error).__name__})",
                code=1,
            ) from None
    return http_url_of(url)


def _monitor_table(args: argparse.Namespace, config: MonitorConfig) -> str | None:
    if args.monitor_table or args.stage:
        return resolve(args, n.MONITOR_TABLE_PARAMETER, "--monitor-table")
    return config.checkpoint_table


def _to_block(args: argparse.Namespace, config: MonitorConfig, monitor_table: str | None, confirmed: int) -> int:
    if args.to_block is not None:
        if args.to_block > confirmed:
            raise OperatorError(
                f"--to-block: {args.to_block} is past the confirmed head {confirmed} (head minus {config.confirmations} confirmations)"
            )
        return args.to_block
    checkpoint = _checkpoint(config, monitor_table)
    return confirmed if checkpoint is None else min(checkpoint, confirmed)


def _checkpoint(config: MonitorConfig, monitor_table: str | None) -> int | None:
    from app.monitor.checkpoint import DynamoCheckpointStore, FileCheckpointStore

    if monitor_table:
        saved = DynamoCheckpointStore(aws.client("dynamodb"), monitor_table, config.chain_id).load()
    elif config.checkpoint_file:
        saved = FileCheckpointStore(config.checkpoint_file, config.chain_id).load()
    else:
        saved = None
    return None if saved is None or saved.block < 0 else saved.block


def _histories(history: History, rates: Rates) -> dict[str, TokenHistory]:
    try:
        return histories(history.events, rates)
    except MissingRate as error:
        raise OperatorError(f"points rate: {error}") from None


def _prefixes(config: MonitorConfig) -> tuple[str, ...]:
    return tuple(f"{config.chain_id}:{c.address}:" for c in config.contracts)


def _check_history_complete(
    chain: ChainClient,
    tables: Tables,
    tokens: dict[str, TokenHistory],
    history: History,
    to_block: int,
    prefixes: tuple[str, ...],
) -> None:
    """Stop unless the logs account for every token `ownerOf` shows: some providers prune their log
    index and answer old `eth_getLogs` with [] instead of an error."""
    logged = {key: h.up_to_block(to_block) for key, h in tokens.items()}
    keys = sorted(set(tables.tokens(prefixes)) | {k for k, step in logged.items() if step})
    owners = chain.run(lambda c: c.owners(keys, to_block))
    for key in keys:
        step = logged.get(key)
        from_logs = step.state.owner if step else "0x" + "0" * 40
        if owners[key] != from_logs:
            what = "no Transfer" if step is None else f"Transfers ending with owner {from_logs}"
            raise ChainError(
                f"node {chain.node}: token {key} is owned by {owners[key]} at block {to_block} (ownerOf), but its logs "
                f"in blocks {history.first_block}..{to_block} show {what}: the node's log history is incomplete "
                "(pruned?); use an archive node"
            )


def _publish(args: argparse.Namespace, config: MonitorConfig, verdict: Verdict) -> None:
    stage = args.stage or config.stage
    try:
        aws.client("cloudwatch").put_metric_data(
            Namespace=NAMESPACE,
            MetricData=[
                {
                    "MetricName": METRIC,
                    "Dimensions": [{"Name": "Stage", "Value": stage}],
                    "Value": len(verdict.mismatches) + len(verdict.unsettled),
                    "Unit": "Count",
                }
            ],
        )
    except Exception as error:  # the report matters more than the metric
        print(f"warning: could not publish {NAMESPACE} {METRIC} ({type(error).__name__})", file=sys.stderr)


def _mark_reorgs(monitor_table: str | None, chain_id: int, to_block: int) -> list[str]:
    if not monitor_table:
        return []
    from botocore.exceptions import ClientError

    from app.monitor.checkpoint import DynamoCheckpointStore

    client = aws.client("dynamodb")
    marked = []
    for item in DynamoCheckpointStore(client, monitor_table, chain_id).reorgs():
        if item.get("status", {}).get("S") != "unreconciled" or int(item["lastBlock"]["N"]) > to_block:
            continue
        try:
            client.update_item(
                TableName=monitor_table,
                Key={"id": item["id"]},
                UpdateExpression="SET #status = :done, reconciledAt = :now, reconciledToBlock = :block",
                ConditionExpression="#status = :open",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":done": {"S": "reconciled"},
                    ":open": {"S": "unreconciled"},
                    ":now": {"N": str(int(time.time()))},
                    ":block": {"N": str(to_block)},
                },
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            continue
        marked.append(item["id"]["S"])
    return marked


def _report(args: argparse.Namespace, found: Verdict, final: Verdict, fixed: list[str], reorgs: list[str]) -> None:
    if args.json:
        print(
            json.dumps(
                {
                    "consistent": final.clean,
                    "toBlock": final.to_block,
                    "tokens": final.tokens,
                    "holders": final.holders,
                    "found": [m.to_json() for m in found.mismatches],
                    "mismatches": [m.to_json() for m in final.mismatches],
                    "unsettled": final.unsettled,
                    "fixed": fixed,
                    "reorgsReconciled": reorgs,
                },
                indent=2,
            )
        )
        return
    if args.fix and fixed:
        for line in fixed:
            print(f"fixed {line}")
    for mismatch in final.mismatches:
        print(mismatch.line())
    for item in final.unsettled:
        print(f"{item}: kept changing while being read; run reconcile again")
    for item in reorgs:
        print(f"marked {item} reconciled")
    verdict = "consistent" if final.clean else f"{len(final.mismatches) + len(final.unsettled)} mismatches"
    print(f"{final.tokens} tokens, {final.holders} holders up to block {final.to_block}: {verdict}")
