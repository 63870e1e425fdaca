"""Tags: every taggable resource says which environment and service it belongs to."""

from collections.abc import Mapping
from pathlib import Path

from pulumi_policy import ReportViolation, ResourceValidationArgs, ResourceValidationPolicy

from .props import UNKNOWN, elements, get, is_unknown, schema, settings

TAGGABLE_TYPES = frozenset(
    line
    for line in (Path(__file__).with_name("taggable_types.txt").read_text(encoding="utf-8").splitlines())
    if line and not line.startswith("#")
)

# Types whose `tags` is a list of {key, value, propagateAtLaunch} blocks rather than a map.
TAG_BLOCK_TYPES = frozenset({"aws:autoscaling/group:Group"})

TAGS_CONFIG = schema(
    tags={
        "type": "object",
        "description": "Required tag keys; a string value must match exactly, null accepts any value.",
        "additionalProperties": {"type": ["string", "null"]},
        "default": {"Environment": None, "Service": None},
    },
)


def _required_tags(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type not in TAGGABLE_TYPES | TAG_BLOCK_TYPES:
        return
    required = settings(args, TAGS_CONFIG)["tags"]
    tags = get(args.props, "tags", default={})
    if args.resource_type in TAG_BLOCK_TYPES:
        tags = _from_blocks(tags)
    if is_unknown(tags) or not isinstance(tags, Mapping):
        return
    present = set(tags)  # iterating keys never touches a value, which may be unknown
    missing = [key for key in required if key not in present]
    if missing:
        report(f"tags lack {', '.join(missing)}; tag every resource with {', '.join(required)}")
    for key, expected in required.items():
        actual = get(tags, key)
        if expected is not None and actual is not None and not is_unknown(actual) and actual != expected:
            report(f'tag {key} is "{actual}"; this stack requires "{expected}"')


def _from_blocks(blocks) -> Mapping | object:
    items = elements(blocks)
    if items is UNKNOWN:
        return UNKNOWN
    return {get(b, "key"): get(b, "value") for b in items if isinstance(get(b, "key"), str)}


required_tags = ResourceValidationPolicy(
    name="required-tags",
    description="Every taggable resource carries the Environment and Service tags with the stack's values.",
    validate=_required_tags,
    config_schema=TAGS_CONFIG,
)

POLICIES = [required_tags]
