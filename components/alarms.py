"""AlarmSet: the two alert routes (page -> PagerDuty, notify -> Slack) and the alarm catalog as alarms.

Both topics are encrypted with a customer key whose policy lets CloudWatch use it: a topic
encrypted with `aws/sns` silently drops every alarm, because CloudWatch may not use that key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.alarm_catalog import CATALOG, AlarmSpec, Metric, Ref
from components.iam import Statement, service_role
from components.kms import customer_key
from components.settings import Settings

CHATBOT_GUARDRAIL = "arn:aws:iam::aws:policy/CloudWatchReadOnlyAccess"


@dataclass(frozen=True)
class AlarmTargets:
    """The names alarm dimensions select, once the resources exist."""

    stream: pulumi.Input[str]
    function: pulumi.Input[str]
    mapping: pulumi.Input[str]
    queue: pulumi.Input[str]
    tokens_table: pulumi.Input[str]
    points_table: pulumi.Input[str]
    stage: str

    def resolve(self, value: str | Ref) -> pulumi.Input[str]:
        return getattr(self, value.target) if isinstance(value, Ref) else value


class AlarmSet(pulumi.ComponentResource):
    page: aws.sns.Topic
    notify: aws.sns.Topic
    alarms: dict[str, aws.cloudwatch.MetricAlarm]

    def __init__(
        self,
        name: str,
        settings: Settings,
        targets: AlarmTargets,
        pagerduty_endpoint: pulumi.Output[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("ngu:pipeline:AlarmSet", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        key = customer_key(
            f"{name}-key",
            settings.names.key_alias("alarms"),
            "Encrypts the alarm topics; CloudWatch may use it to publish",
            settings,
            self,
            cloudwatch_publishes(settings, self),
        )
        self.page = aws.sns.Topic(
            f"{name}-page", name=settings.names.page_topic, kms_master_key_id=key.arn, tags=settings.tags, opts=child
        )
        self.notify = aws.sns.Topic(
            f"{name}-notify",
            name=settings.names.notify_topic,
            kms_master_key_id=key.arn,
            tags=settings.tags,
            opts=child,
        )
        aws.sns.TopicSubscription(
            f"{name}-pagerduty",
            topic=self.page.arn,
            protocol="https",
            endpoint=pagerduty_endpoint,
            endpoint_auto_confirms=True,
            opts=child,
        )
        chatbot_role, _ = service_role(
            f"{name}-chatbot",
            role_name=settings.names.chatbot_role,
            description="AWS Chatbot posts the alarm topics to Slack; it needs no permissions of its own",
            service="chatbot.amazonaws.com",
            policies={},
            tags=settings.tags,
            parent=self,
        )
        aws.chatbot.SlackChannelConfiguration(
            f"{name}-slack",
            configuration_name=settings.names.chatbot_configuration,
            iam_role_arn=chatbot_role.arn,
            slack_team_id=settings.alerts.slack_team_id,
            slack_channel_id=settings.alerts.slack_channel_id,
            sns_topic_arns=[self.notify.arn, self.page.arn],
            guardrail_policy_arns=[CHATBOT_GUARDRAIL],
            logging_level="ERROR",
            region=settings.alerts.chatbot_region,
            tags=settings.tags,
            opts=child,
        )
        self.alarms = {spec.name: self._alarm(name, spec, settings, targets) for spec in CATALOG}
        self.register_outputs({"pageTopicArn": self.page.arn, "notifyTopicArn": self.notify.arn})

    def _alarm(
        self, name: str, spec: AlarmSpec, settings: Settings, targets: AlarmTargets
    ) -> aws.cloudwatch.MetricAlarm:
        routes = [self.page.arn, self.notify.arn] if spec.severity == "page" else [self.notify.arn]
        period = spec.period(settings)
        shape: dict = {}
        if spec.expression is None:
            (metric,) = spec.metrics.values()
            shape = {
                "namespace": metric.namespace.format(stage=settings.stage),
                "metric_name": metric.name,
                "statistic": metric.stat,
                "dimensions": _dimensions(metric, targets) or None,
                "period": period,
            }
        else:
            shape = {
                "metric_queries": [
                    aws.cloudwatch.MetricAlarmMetricQueryArgs(
                        id="rate", expression=spec.expression, label=spec.name, return_data=True
                    ),
                    *(
                        aws.cloudwatch.MetricAlarmMetricQueryArgs(
                            id=query_id,
                            return_data=False,
                            metric=aws.cloudwatch.MetricAlarmMetricQueryMetricArgs(
                                namespace=metric.namespace.format(stage=settings.stage),
                                metric_name=metric.name,
                                stat=metric.stat,
                                period=period,
                                dimensions=_dimensions(metric, targets) or None,
                            ),
                        )
                        for query_id, metric in spec.metrics.items()
                    ),
                ]
            }
        return aws.cloudwatch.MetricAlarm(
            f"{name}-{spec.name}",
            name=settings.names.alarm(spec.name, seed_name=spec.seed_name),
            alarm_description=f"[{spec.severity}] {spec.summary} Runbook: {spec.runbook} (threshold: {spec.threshold_key})",
            comparison_operator=spec.comparison,
            threshold=spec.threshold(settings),
            evaluation_periods=spec.evaluation_periods,
            treat_missing_data=spec.missing,
            alarm_actions=routes,
            ok_actions=routes,
            tags=settings.tags,
            opts=pulumi.ResourceOptions(parent=self),
            **shape,
        )


def cloudwatch_publishes(settings: Settings, parent: pulumi.Resource) -> Statement:
    """The key statement the SNS documentation gives CloudWatch alarms publishing to an encrypted topic,
    narrowed to this account and to this stage's alarms (the confused-deputy conditions)."""
    account = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=parent)).account_id
    alarms = [
        pulumi.Output.concat("arn:aws:cloudwatch:", settings.region, ":", account, ":alarm:", pattern)
        for pattern in (settings.names.alarm("*", seed_name=True), settings.names.alarm("*"))
    ]
    return Statement(
        sid="CloudWatchPublishes",
        actions=["kms:Decrypt", "kms:GenerateDataKey*"],
        resources=["*"],
        principals={"Service": "cloudwatch.amazonaws.com"},
        conditions={"StringEquals": {"aws:SourceAccount": account}, "ArnLike": {"aws:SourceArn": alarms}},
    )


def _dimensions(metric: Metric, targets: AlarmTargets) -> Mapping[str, pulumi.Input[str]]:
    return {key: targets.resolve(value) for key, value in metric.dimensions}
