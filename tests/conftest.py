"""Hermetic defaults for every test: no real AWS credentials, no tracing, a fixed region."""

import os

import pytest

for _name in list(os.environ):
    if _name.startswith("AWS_") and _name not in {"AWS_ENDPOINT_URL"}:
        del os.environ[_name]
os.environ.pop("AWS_ENDPOINT_URL", None)
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "1",
        "POWERTOOLS_DEV": "0",
    }
)


@pytest.fixture(autouse=True)
def _no_ambient_aws_profile(monkeypatch):
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture(autouse=True)
def _fresh_aws_session():
    """Each test's clients start from a fresh session, as moto's mocks give boto3's default session:
    no credentials or endpoint resolved under an earlier test's environment."""
    from app import aws

    aws.reset()
