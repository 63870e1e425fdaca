"""Regenerate policy/ngu_policies/taggable_types.txt from the installed pulumi-aws.

The policy pack runs in its own virtualenv without pulumi-aws, so the list of AWS resource types
whose `tags` input is a string map is generated here, once per provider upgrade, and checked in.

    python -m tools.taggable_types          # rewrite the file
    python -m tools.taggable_types --check  # exit 1 when the file is stale
"""

import argparse
import re
import sys
from pathlib import Path

import pulumi_aws

TYPES_FILE = Path(__file__).resolve().parent.parent / "policy" / "ngu_policies" / "taggable_types.txt"

_TYPE_TOKEN = re.compile(r"super\(\w+, __self__\).__init__\(\s*'(aws:[^']+)'")
# A string map, not the autoscaling group's list of {key, value, propagateAtLaunch} blocks.
_TAGS_MAP_INPUT = re.compile(r"^\s+tags: pulumi\.Input\[Optional\[Mapping\[str,", re.MULTILINE)


def taggable_types() -> list[str]:
    root = Path(pulumi_aws.__file__).parent
    found: set[str] = set()
    for source in root.rglob("*.py"):
        text = source.read_text(encoding="utf-8")
        token = _TYPE_TOKEN.search(text)
        if token and _TAGS_MAP_INPUT.search(text):
            found.add(token.group(1))
    return sorted(found)


def render() -> str:
    version = pulumi_aws._utilities.get_version()
    header = f"# AWS resource types with a `tags` string-map input (pulumi-aws {version}); tools/taggable_types.py\n"
    return header + "".join(f"{t}\n" for t in taggable_types())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when the checked-in list is stale")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if TYPES_FILE.read_text(encoding="utf-8") != text:
            print(f"{TYPES_FILE}: stale; run python -m tools.taggable_types", file=sys.stderr)
            return 1
        return 0
    TYPES_FILE.write_text(text, encoding="utf-8")
    print(f"{TYPES_FILE}: {len(text.splitlines()) - 1} types")
    return 0


if __name__ == "__main__":
    sys.exit(main())
