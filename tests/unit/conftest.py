"""The handler's environment over moto tables and queue (tests that define their own `ledger` override it)."""

import json

import pytest

from app import processor
from tests.support.aws import POINTS, TOKENS, moto_ledger
from tests.support.chain import RATE_KEY


@pytest.fixture
def ledger(monkeypatch):
    with moto_ledger() as ledger:
        monkeypatch.setenv("TOKENS_TABLE", TOKENS)
        monkeypatch.setenv("POINTS_TABLE", POINTS)
        monkeypatch.setenv("QUARANTINE_QUEUE_URL", ledger.queue_url)
        monkeypatch.setenv("POINTS_PER_DAY", json.dumps({RATE_KEY: 10}))
        monkeypatch.delenv("DEFAULT_POINTS_PER_DAY", raising=False)
        monkeypatch.setenv("STAGE", "test")
        processor.consumer.cache_clear()
        yield ledger
        processor.consumer.cache_clear()
