"""Any bytes and any JSON document among good records: the handler never raises, no ledger attribute
goes negative, no number DynamoDB cannot store is written, and the good records are applied."""

import contextlib
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app import processor
from app.events import InvalidEvent, decode
from tests.support.chain import KinesisBatch, LambdaContext
from tests.unit.test_ledger_properties import expected_tables, histories, monkeypatch_module  # noqa: F401
from tests.unit.test_poison import _numbers

LEAVES = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.sampled_from([-1, 0, 2**32, 2**63, 2**256, 10**38, 10**40, -(10**40)])
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(["0x" + "a" * 40, "0x" + "b" * 64, "1", "007", str(2**256), "transfer"])
)
JSON = st.recursive(
    LEAVES,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=12,
)
FIELDS = [
    ("v",),
    ("id",),
    ("chainId",),
    ("contract",),
    ("kind",),
    ("tokenId",),
    ("from",),
    ("to",),
    ("block",),
    ("block", "number"),
    ("block", "hash"),
    ("block", "timestamp"),
    ("tx",),
    ("tx", "index"),
    ("logIndex",),
]


@st.composite
def mutated(draw, document: dict) -> bytes:
    """A good record's document with one field replaced (or removed) by arbitrary JSON."""
    doc = json.loads(json.dumps(document))
    *parents, leaf = draw(st.sampled_from(FIELDS))
    target = doc
    for parent in parents:
        target = target[parent]
    if draw(st.booleans()):
        target[leaf] = draw(JSON)
    else:
        del target[leaf]
    return json.dumps(doc).encode()


def hostile(document: dict) -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.binary(max_size=200),
        JSON.map(lambda value: json.dumps(value).encode()),
        mutated(document),
        st.integers(1, 200_000).map(lambda n: b"[" * n + b"]" * n),
        st.integers(4290, 4400).map(lambda n: b'{"v": ' + b"9" * n + b"}"),
    )


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_hostile_records_never_crash_the_handler_nor_unbalance_the_ledger(data, monkeypatch_module):  # noqa: F811
    from tests.support.aws import moto_ledger

    history = data.draw(histories())
    good = history.events[:12]
    history.events = good
    bad = data.draw(st.lists(hostile(good[0].to_json()), min_size=1, max_size=6))
    positions = sorted(data.draw(st.lists(st.integers(0, len(good)), min_size=len(bad), max_size=len(bad))))

    records: list[bytes] = [e.encode() for e in good]
    for offset, (position, body) in enumerate(zip(positions, bad, strict=True)):
        records.insert(position + offset, body)
    # Bad records that happen to be valid events (a mutated timestamp, say) may win over good ones.
    touched = set()
    for body in bad:
        with contextlib.suppress(InvalidEvent):
            touched.add(decode(body).token_key)

    with moto_ledger() as ledger:
        monkeypatch_module.setenv("QUARANTINE_QUEUE_URL", ledger.queue_url)
        processor.consumer.cache_clear()
        written = []
        client = processor.consumer().store.client
        client.meta.events.register("provide-client-params.dynamodb.*", lambda params, **_: written.append(params))
        batch = KinesisBatch()
        for body in records:
            batch.add_raw(body, "pk")
        assert processor.handler(batch.event(), LambdaContext()) == {"batchItemFailures": []}

        tokens, points = expected_tables(history)
        actual = ledger.tokens()
        for key, row in tokens.items():
            if key not in touched:
                assert {k: actual[key][k] for k in ("owner", "acquiredAt", "lastSeq")} == row
        for row in ledger.points().values():
            assert all(value >= 0 for name, value in row.items() if name != "holder"), row
        if not touched:
            assert {h: {k: v for k, v in r.items() if k != "holder"} for h, r in ledger.points().items()} == points
        assert all(len(n.lstrip("-")) <= 38 for n in _numbers(written))
        assert len(ledger.quarantined()) >= len(bad) - len(touched)
    processor.consumer.cache_clear()
