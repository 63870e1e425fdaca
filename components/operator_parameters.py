"""OperatorParameters: every name an operator needs, as SSM String parameters under the stage's prefix.

The keys are app/names.py's OPERATOR_PARAMETERS, the ones the operator commands read and the local
stack writes. KINESIS_STREAM_NAME predates this stack (the seed's runbook `put-parameter`s it): with
`stream.nameParameter: adopt` the existing parameter is imported, not created (creating it would fail
with ParameterAlreadyExists).
"""

from __future__ import annotations

from collections.abc import Mapping

import pulumi
import pulumi_aws as aws

from app.names import OPERATOR_PARAMETERS, STREAM_PARAMETER
from components.settings import Settings


class OperatorParameters(pulumi.ComponentResource):
    parameters: dict[str, aws.ssm.Parameter]

    def __init__(
        self,
        name: str,
        settings: Settings,
        values: Mapping[str, pulumi.Input[str]],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("ngu:pipeline:OperatorParameters", name, None, opts)
        if set(values) != set(OPERATOR_PARAMETERS):
            missing = sorted(set(OPERATOR_PARAMETERS) - set(values))
            extra = sorted(set(values) - set(OPERATOR_PARAMETERS))
            raise ValueError(f"operator parameters: missing {missing}, unknown {extra} (app/names.py)")
        self.parameters = {key: self._parameter(name, key, values[key], settings) for key in OPERATOR_PARAMETERS}
        self.register_outputs({"names": {key: p.name for key, p in self.parameters.items()}})

    def _parameter(self, name: str, key: str, value: pulumi.Input[str], settings: Settings) -> aws.ssm.Parameter:
        full_name = settings.names.parameter(key)
        adopt = key == STREAM_PARAMETER and settings.stream.name_parameter == "adopt"
        return aws.ssm.Parameter(
            f"{name}-{key.lower().replace('_', '-')}",
            name=full_name,
            type="String",
            value=value,
            tags=settings.tags,
            opts=pulumi.ResourceOptions(parent=self, import_=full_name if adopt else None),
        )
