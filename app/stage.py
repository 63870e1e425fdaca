"""Names by stage for the operator commands: `--stage S` reads them from the SSM parameters the stack
publishes under /ngu-points-system-v2/{S}/ (app/names.py), and an explicit flag overrides each.

Precedence for one name: the explicit flag, then `--stage` (its SSM parameter), then the environment
variable the Lambda itself reads (TOKENS_TABLE, POINTS_TABLE, ...). An explicit `--stage` beats an
ambient environment on purpose: `--stage prod` in a shell left set up for the local stack must mean prod.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from app import aws
from app import names as n
from app.errors import OperatorError
from app.names import StageNames
from app.rates import Rates, RatesError

# Environment variables that stand for a parameter when neither a flag nor --stage names it.
ENVIRONMENT = {
    n.TOKENS_TABLE_PARAMETER: "TOKENS_TABLE",
    n.POINTS_TABLE_PARAMETER: "POINTS_TABLE",
    n.QUARANTINE_PARAMETER: "QUARANTINE_QUEUE_URL",
}


def stage_argument(parser: argparse.ArgumentParser, *, required: bool = False) -> None:
    parser.add_argument(
        "--stage",
        required=required,
        metavar="S",
        help="the stage (prod, staging, local, ...): names come from its SSM parameters under /ngu-points-system-v2/S/",
    )


def stage_names(args: argparse.Namespace) -> StageNames:
    stage = getattr(args, "stage", None)
    if not stage:
        raise OperatorError("--stage: missing")
    try:
        return StageNames(stage)
    except ValueError as error:
        raise OperatorError(f"--stage: {str(error).removeprefix('stage: ')}") from None


def resolve(args: argparse.Namespace, key: str, flag: str | None = None) -> str:
    """The value of one of app/names.py's OPERATOR_PARAMETERS for this command.

    `flag` is the option that overrides it (e.g. `--tokens-table`); its value is read from `args`."""
    explicit = getattr(args, flag.removeprefix("--").replace("-", "_"), None) if flag else None
    if explicit:
        return explicit
    if getattr(args, "stage", None):
        return parameters(args).get(key)
    variable = ENVIRONMENT.get(key)
    if variable and os.environ.get(variable):
        return os.environ[variable]
    also = f", or set {variable}" if variable else ""
    raise OperatorError(f"{flag or key}: missing (give it or --stage S{also})")


def function_environment(args: argparse.Namespace) -> dict[str, str]:
    """The processor function's own environment, when the stage names a function that has one."""
    if not getattr(args, "stage", None):
        return {}
    from botocore.exceptions import ClientError

    try:
        function = parameters(args).get(n.FUNCTION_PARAMETER)
    except OperatorError:
        return {}
    try:
        configuration = aws.client("lambda").get_function_configuration(FunctionName=function)
    except ClientError as error:
        raise OperatorError(f"function {function}: {error.response.get('Error', {}).get('Code')}", code=1) from None
    return configuration.get("Environment", {}).get("Variables", {})


def environment_rates(function: dict[str, str]) -> Rates:
    """Points rates as the Lambda reads them: POINTS_PER_DAY / DEFAULT_POINTS_PER_DAY from this shell when
    set there, else from the processor function's environment (`function_environment`)."""
    source = os.environ if os.environ.get("POINTS_PER_DAY") or os.environ.get("DEFAULT_POINTS_PER_DAY") else function
    try:
        return Rates.parse(source.get("POINTS_PER_DAY"), source.get("DEFAULT_POINTS_PER_DAY"))
    except RatesError as error:
        raise OperatorError(str(error)) from None


class StageParameters:
    """Every parameter under one stage's prefix, read once (one paginated GetParametersByPath)."""

    def __init__(self, names: StageNames, ssm: Any) -> None:
        self.names = names
        self._values: dict[str, str] | None = None
        self._ssm = ssm

    def get(self, key: str) -> str:
        values = self._load()
        if key not in values:
            raise OperatorError(
                f"--stage {self.names.stage}: SSM parameter {self.names.parameter(key)} not found "
                "(is the stack deployed, and AWS_REGION / the account right?)",
                code=1,
            )
        return values[key]

    def _load(self) -> dict[str, str]:
        if self._values is None:
            from botocore.exceptions import BotoCoreError, ClientError

            prefix = self.names.ssm_prefix + "/"
            values: dict[str, str] = {}
            try:
                for page in self._ssm.get_paginator("get_parameters_by_path").paginate(Path=self.names.ssm_prefix):
                    for parameter in page.get("Parameters", []):
                        values[parameter["Name"].removeprefix(prefix)] = parameter["Value"]
            except (BotoCoreError, ClientError) as error:
                raise OperatorError(
                    f"--stage {self.names.stage}: cannot read SSM parameters under {prefix} ({_reason(error)})", code=1
                ) from None
            self._values = values
        return self._values


def parameters(args: argparse.Namespace) -> StageParameters:
    """The stage's parameters, read at most once per command run."""
    cached = getattr(args, "_stage_parameters", None)
    if cached is None:
        cached = StageParameters(stage_names(args), aws.client("ssm"))
        args._stage_parameters = cached
    return cached


def _reason(error: Exception) -> str:
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        return response.get("Error", {}).get("Code", type(error).__name__)
    return type(error).__name__
