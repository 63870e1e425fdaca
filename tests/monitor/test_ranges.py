"""The range reader: hand decoding, span shrinking on provider limits and growing back, reorg
evidence (hashes), and the checkpoint's rule of advancing only across completed ranges."""

from __future__ import annotations

import asyncio
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.monitor.checkpoint import HISTORY_DENSE, HISTORY_SPACING, Checkpoint, FileCheckpointStore, Progress
from app.monitor.config import ContractConfig
from app.monitor.decoding import TRANSFER_TOPIC, decode_transfers
from app.monitor.ranges import ChainMoved, MissingBlock, RangeReader, is_limit_error
from app.monitor.rpc import RpcError

CONTRACT = "0x" + "ab" * 20
OTHER = "0x" + "ef" * 20


def topic(address_or_int) -> str:
    value = int(address_or_int, 16) if isinstance(address_or_int, str) else address_or_int
    return "0x" + f"{value:064x}"


def log(block: int, index: int, token: int, *, address=CONTRACT, erc20=False) -> dict:
    topics = [TRANSFER_TOPIC, topic("0x" + "11" * 20), topic("0x" + "22" * 20)]
    if not erc20:
        topics.append(topic(token))
    return {
        "address": address,
        "topics": topics,
        "data": "0x" + f"{token:064x}" if erc20 else "0x",
        "blockNumber": hex(block),
        "blockHash": block_hash(block),
        "transactionHash": "0x" + f"{block * 100 + index:064x}",
        "transactionIndex": hex(0),
        "logIndex": hex(index),
        "removed": False,
    }


def block_hash(number: int) -> str:
    return "0x" + f"{number + 0xABC:064x}"


def bloom_of(logs) -> str:
    """The logsBloom a node would put in the header of a block with `logs`."""
    from app.monitor.ranges import _bloom_bits

    value = 0
    for entry in logs:
        value |= _bloom_bits(bytes.fromhex(entry["address"][2:]))
        for item in entry["topics"]:
            value |= _bloom_bits(bytes.fromhex(item[2:]))
    return "0x" + f"{value:0512x}"


class FakeNode:
    """eth_getLogs and eth_getBlockByNumber over a list of logs; refuses spans over `limit`.
    `hidden`: blocks whose logs the range answer leaves out (a lagging replica); `unreadable`:
    blocks it also refuses to read by hash."""

    def __init__(self, logs, limit: int | None = None, hidden=(), unreadable=(), head: int | None = None) -> None:
        self.logs = logs
        self.head = head if head is not None else max([int(e["blockNumber"], 16) for e in logs] + [10])
        self.limit = limit
        self.hidden = set(hidden)
        self.unreadable = set(unreadable)
        self.spans: list[int] = []
        self.header_requests: list[int] = []
        self.hash_reads: list[str] = []

    async def call(self, method, params=()):
        if method == "eth_blockNumber":
            return hex(self.head)
        assert method == "eth_getLogs"
        first, last = int(params[0]["fromBlock"], 16), int(params[0]["toBlock"], 16)
        self.spans.append(last - first + 1)
        if self.limit and last - first + 1 > self.limit:
            raise RpcError("eth_getLogs", -32602, f"query exceeds max block range {self.limit}")
        return [
            entry
            for entry in self.logs
            if first <= int(entry["blockNumber"], 16) <= last and int(entry["blockNumber"], 16) not in self.hidden
        ]

    async def batch(self, method, params_list, return_errors=False):
        if method == "eth_getLogs":
            answers = []
            for [query] in params_list:
                self.hash_reads.append(query["blockHash"])
                number = next(n for n in range(-1, 10_000) if block_hash(n) == query["blockHash"])
                if number in self.unreadable:
                    answers.append(RpcError("eth_getLogs", -32000, "unknown block"))
                else:
                    answers.append([e for e in self.logs if int(e["blockNumber"], 16) == number])
            return answers
        assert method == "eth_getBlockByNumber"
        self.header_requests += [int(p[0], 16) for p in params_list]
        return [self.header(int(p[0], 16)) for p in params_list]

    def header(self, n: int) -> dict:
        logs = [e for e in self.logs if int(e["blockNumber"], 16) == n]
        return {
            "number": hex(n),
            "hash": block_hash(n),
            "parentHash": block_hash(n - 1),
            "timestamp": hex(1000 + n),
            "logsBloom": bloom_of(logs),
        }


def reader(node, span: int | None = None, **options) -> RangeReader:
    values = {"max_span": 1000, "target_logs": 100} | options
    made = RangeReader(node, chain_id=31337, contracts=[ContractConfig(address=CONTRACT)], **values)
    if span:
        made.span = span
    return made


def test_only_four_topic_transfers_of_watched_contracts_after_their_start_are_decoded():
    logs = [log(5, 0, 1), log(5, 1, 2, erc20=True), log(6, 0, 3, address=OTHER), log(3, 0, 4)]
    events = decode_transfers(logs, chain_id=31337, timestamps={5: 50, 6: 60, 3: 30}, start_blocks={CONTRACT: 4})
    assert [(e.token_id, e.block_number, e.log_index, e.block_timestamp) for e in events] == [(1, 5, 0, 50)]
    assert events[0].from_address == "0x" + "11" * 20 and events[0].to_address == "0x" + "22" * 20


def test_the_span_shrinks_on_provider_limits_and_grows_back():
    node = FakeNode([log(n, 0, n) for n in range(0, 400, 7)], limit=50)
    read = reader(node, max_span=400, target_logs=100)

    async def read_all():
        found, cursor = [], -1
        while cursor < 399:
            chunk = await read.read(cursor + 1, 399)
            found += chunk.events
            cursor = chunk.last
        return found

    events = asyncio.run(read_all())
    assert [e.token_id for e in events] == list(range(0, 400, 7)), "contiguous, nothing skipped"
    assert read.shrinks > 0, "a refused span was halved and tried again"
    assert max(node.spans) > 50, "it tried to grow past the limit"
    node.limit = None
    chunk = asyncio.run(read.read(0, 399))
    chunk = asyncio.run(read.read(chunk.last + 1, 399))
    assert read.span > 50, "grows back once the provider stops refusing"


def test_the_first_span_is_small_so_publishing_starts_early():
    node = FakeNode([log(n, 0, n) for n in range(100)])
    chunk = asyncio.run(reader(node, max_span=1000).read(0, 99))
    assert chunk.last < 10


def test_many_logs_shrink_the_span_and_each_block_header_is_fetched_once():
    node = FakeNode([log(n, i, n * 10 + i) for n in range(10) for i in range(50)])
    read = reader(node, max_span=10, target_logs=100)
    read.span = 10
    chunk = asyncio.run(read.read(0, 9))
    assert len(chunk.events) == 500 and read.span == 5
    assert sorted(node.header_requests) == list(range(10)), "every header of the range, each once"
    assert node.hash_reads == [], "no block re-read: every block whose bloom matches had its logs"
    assert chunk.parent_hash == block_hash(-1) and chunk.last_hash == block_hash(9)
    assert (4, block_hash(4)) in chunk.hashes


def test_a_log_whose_block_hash_is_not_the_headers_is_read_again():
    stale = log(3, 0, 1)
    stale["blockHash"] = "0x" + "99" * 32
    with pytest.raises(ChainMoved):
        asyncio.run(reader(FakeNode([stale])).read(0, 5))


@pytest.mark.parametrize(
    ("message", "code", "limited"),
    [
        ("query returned more than 10000 results", -32005, True),
        ("block range is too wide", -32602, True),
        ("Log response size exceeded.", -32602, True),
        ("execution reverted", 3, False),
    ],
)
def test_provider_limit_errors_are_recognised(message, code, limited):
    assert is_limit_error(RpcError("eth_getLogs", code, message)) is limited


def test_the_checkpoint_moves_only_across_completed_ranges():
    moved = []
    progress = Progress(Checkpoint(9, "0xa"), moved.append)
    first = progress.open(10, 19, "0x19")
    second = progress.open(20, 29, "0x29")
    for ticket in (first, second):
        ticket.add()
        ticket.add()
    progress.seal(first)
    progress.seal(second)
    second.ack()
    second.ack()
    assert progress.checkpoint.block == 9, "the later range is done, the earlier is not"
    first.ack()
    assert progress.checkpoint.block == 9
    first.ack()
    assert progress.checkpoint.block == 29 and progress.checkpoint.hash == "0x29"
    assert [c.block for c in moved] == [29]
    with pytest.raises(ValueError, match="does not follow"):
        progress.open(31, 40, "0x40")


def test_an_unsealed_range_holds_the_checkpoint_even_with_nothing_outstanding():
    progress = Progress(Checkpoint(-1))
    ticket = progress.open(0, 5, "0x5")
    progress.advance()
    assert progress.checkpoint.block == -1
    progress.seal(ticket)
    assert progress.checkpoint.block == 5


def test_logs_a_lagging_replica_left_out_are_found_through_the_bloom_and_counted():
    logs = [log(2, 0, 1), log(4, 0, 2), log(5, 0, 3)]
    node = FakeNode(logs, hidden={4, 5})  # the range answer lacks blocks 4 and 5 (replica behind)
    chunk = asyncio.run(reader(node, span=10).read(0, 5))
    assert chunk.last == 5
    assert [e.token_id for e in chunk.events] == [1, 2, 3]
    assert node.hash_reads == [block_hash(4), block_hash(5)], "only the blocks whose bloom matched, by hash"
    assert len(chunk.repairs) == 2 and chunk.rereads == 2


def test_a_bloom_false_positive_is_re_read_counted_and_not_a_repair():
    class Crowded(FakeNode):
        def header(self, n):
            found = super().header(n)
            if n == 3:  # other logs happen to set every bit of our contract and the Transfer topic
                found["logsBloom"] = bloom_of([log(3, 0, 9)])
            return found

    node = Crowded([log(2, 0, 1)])
    chunk = asyncio.run(reader(node, span=10).read(0, 5))
    assert [e.token_id for e in chunk.events] == [1]
    assert node.hash_reads == [block_hash(3)]
    assert (chunk.rereads, chunk.repairs) == (1, ())


def test_a_block_the_node_cannot_read_by_hash_ends_the_range_before_it():
    node = FakeNode([log(2, 0, 1), log(4, 0, 2)], hidden={4}, unreadable={4})
    chunk = asyncio.run(reader(node, span=10).read(0, 5))
    assert (chunk.last, [e.token_id for e in chunk.events]) == (3, [1])
    assert chunk.last_hash == block_hash(3)
    with pytest.raises(MissingBlock):
        asyncio.run(reader(FakeNode([log(4, 0, 2)], hidden={4}, unreadable={4}), span=10).read(4, 5))


def test_headers_that_do_not_chain_or_are_missing_are_never_accepted():
    class Forked(FakeNode):
        def header(self, n):
            found = super().header(n)
            if n == 3:
                found["parentHash"] = "0x" + "77" * 32  # block 3 of another chain
            return found

    with pytest.raises(ChainMoved):
        asyncio.run(reader(Forked([]), span=10).read(0, 5))

    class Behind(FakeNode):
        def header(self, n):
            return None if n > 4 else super().header(n)

    with pytest.raises(MissingBlock):
        asyncio.run(reader(Behind([]), span=10).read(0, 5))


@pytest.mark.parametrize("bloom", [None, "", "0x12", 42])
def test_a_header_without_a_real_bloom_is_never_accepted(bloom):
    """A missing bloom must not read as an empty one: that would switch the completeness check off."""

    class Bloomless(FakeNode):
        def header(self, n):
            found = super().header(n)
            if n == 2:
                found["logsBloom"] = bloom
            return found

    with pytest.raises(ChainMoved, match="logsBloom"):
        asyncio.run(reader(Bloomless([log(2, 0, 1)]), span=10).read(0, 5))


def test_a_bloom_matches_our_transfer_only():
    from app.monitor.ranges import BloomFilter

    ours = BloomFilter([CONTRACT], TRANSFER_TOPIC)
    assert ours.may_contain(bloom_of([log(1, 0, 1)]))
    assert not ours.may_contain(bloom_of([log(1, 0, 1, address=OTHER)]))
    assert not ours.may_contain("0x" + "0" * 512)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 300_000), st.lists(st.integers(1, 5000), min_size=1, max_size=40))
def test_the_hash_history_keeps_recent_blocks_and_sparse_ones_back_to_the_first(start, spans):
    progress = Progress(Checkpoint(start - 1))
    first = start
    for span in spans:
        last = first + span - 1
        hashes = ((first - 1, f"h{first - 1}"), *((n, f"h{n}") for n in range(first, last + 1)))
        progress.seal(progress.open(first, last, f"h{last}", hashes))
        first = last + 1
    history = progress.checkpoint.recent
    newest = first - 1
    numbers = [n for n, _ in history]
    assert numbers == sorted(set(numbers)) and numbers[0] == start - 1 and numbers[-1] == newest
    assert all(h == f"h{n}" for n, h in history)
    assert set(range(max(start - 1, newest - HISTORY_DENSE + 1), newest + 1)) <= set(numbers)
    for older, newer in itertools.pairwise(numbers):
        # a fork anywhere is located to within 2/HISTORY_SPACING of its depth (+1 for the ends)
        assert newer - older <= max(1, 2 * (newest - older) // HISTORY_SPACING) + 1
    assert len(history) <= HISTORY_DENSE + HISTORY_SPACING * 2 * max(1, (newest - start + 2).bit_length())


def test_a_save_never_moves_the_stored_checkpoint_back_unless_it_is_a_rewind(tmp_path):
    store = FileCheckpointStore(tmp_path / "checkpoint.json", 31337)
    assert store.save(Checkpoint(10, "0xa"))
    assert not store.save(Checkpoint(8, "0x8")), "another monitor behind this one"
    assert store.load().block == 10
    assert store.save(Checkpoint(12, "0xc"))
    assert store.save(Checkpoint(5, "0x5"), rewind=True)
    assert store.load() == Checkpoint(5, "0x5")


def test_a_range_far_below_the_head_is_proven_like_one_at_the_head():
    """A backfill's deep range gets every header and its blooms: a replica that left out a deep
    block's logs is caught and repaired there too (a depth window once skipped these proofs)."""
    node = FakeNode([log(10, 0, 1), log(50, 0, 2)], head=100_000, hidden={50})
    chunk = asyncio.run(reader(node, span=200).read(0, 800))
    assert chunk.last == 199 and [e.token_id for e in chunk.events] == [1, 2]
    assert sorted(node.header_requests) == list(range(200))
    assert node.hash_reads == [block_hash(50)]
    assert chunk.repairs == ("block 50: 1 logs missing from the range answer",)
