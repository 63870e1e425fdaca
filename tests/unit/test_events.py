import json
import sys

import pytest

from app.events import MAX_RECORD_BYTES, InvalidEvent, decode
from tests.support.chain import CHAIN_ID, CONTRACT, address, transfer

GOOD = transfer(2**256 - 1, address(1), address(2), block=19_000_000, timestamp=1_700_000_000, log_index=17)


def document(**changes):
    doc = GOOD.to_json()
    for path, value in changes.items():
        target = doc
        *parents, leaf = path.split("__")
        for parent in parents:
            target = target[parent]
        if value is KeyError:
            del target[leaf]
        else:
            target[leaf] = value
    return json.dumps(doc).encode()


def test_round_trip_keeps_every_field():
    assert decode(GOOD.encode()) == GOOD


def test_contract_values_of_design_section_3():
    doc = json.loads(GOOD.encode())
    assert doc["v"] == 1
    assert doc["id"] == f"{CHAIN_ID}:{GOOD.tx_hash}:17"
    assert doc["tokenId"] == str(2**256 - 1)
    assert GOOD.partition_key == f"{CHAIN_ID}:{CONTRACT}:{2**256 - 1}"
    assert GOOD.seq == 19_000_000 * 1_000_000 + 17


def test_addresses_and_hashes_are_normalised_to_lowercase():
    doc = json.loads(GOOD.encode())
    doc["from"] = "0x" + "AB" * 20
    doc["block"]["hash"] = doc["block"]["hash"].upper().replace("0X", "0x")
    doc["tx"]["hash"] = doc["tx"]["hash"].upper().replace("0X", "0x")
    doc["id"] = doc["id"].upper().replace("0X", "0x")
    event = decode(json.dumps(doc))
    assert event.from_address == "0x" + "ab" * 20
    assert event.block_hash == GOOD.block_hash
    assert event.id == GOOD.id


@pytest.mark.parametrize(
    ("data", "field", "reason"),
    [
        (b"not json", "record", "not UTF-8 JSON"),
        (b"\xff\xfe", "record", "not UTF-8 JSON"),
        (b"[1, 2]", "record", "expected a JSON object"),
        (document(v=2), "v", "unsupported schema version 2"),
        (document(v="1"), "v", "expected int"),
        (document(kind="approval"), "kind", "unknown kind"),
        (document(tokenId=KeyError), "tokenId", "missing"),
        (document(block__timestamp=KeyError), "block.timestamp", "missing"),
        (document(tx=KeyError), "tx", "missing"),
        (document(to="0x1234"), "to", "not a 20-byte 0x hex address"),
        (document(contract="5fbdb2315678afecb367f032d93f642f64180aa3"), "contract", "not a 20-byte"),
        (document(tokenId="-1"), "tokenId", "non-negative decimal string"),
        (document(tokenId="0x10"), "tokenId", "non-negative decimal string"),
        (document(tokenId="007"), "tokenId", "non-negative decimal string"),
        (document(tokenId=12), "tokenId", "expected str"),
        (document(tokenId=str(2**256)), "tokenId", "exceeds uint256"),
        (document(tokenId="9" * 3000), "tokenId", "exceeds uint256"),
        (document(tokenId="9" * 5000), "record", "more than a v1 record can hold (4096)"),
        (b"[" * 100_000 + b"]" * 100_000, "record", "more than a v1 record can hold"),
        (b"[" * 17 + b"]" * 17, "record", "17 '[' or '{', more than a v1 record holds (16)"),
        (document(block__number=2**63), "block.number", f"must be below {2**63}"),
        (document(block__number=10**40), "block.number", "must be below"),
        (document(block__timestamp=10**40), "block.timestamp", f"must be below {2**32}, got a 41-digit number"),
        (document(block__timestamp=2**32), "block.timestamp", f"must be below {2**32}"),
        (document(tx__index=1_000_000), "tx.index", "must be below 1000000"),
        (document(chainId=2**63), "chainId", f"must be below {2**63}"),
        (document(chainId=True), "chainId", "expected int"),
        (document(chainId=0), "chainId", "must be a positive integer"),
        (document(block__number=-5), "block.number", "must not be negative"),
        (document(block__number=1.5), "block.number", "expected int"),
        (document(block__hash="0x12"), "block.hash", "not a 32-byte"),
        (document(logIndex=1_000_000), "logIndex", "must be below 1000000"),
        (document(id="1:0xabc:17"), "id", "does not match"),
    ],
)
def test_malformed_records_name_the_field_and_the_reason(data, field, reason):
    with pytest.raises(InvalidEvent) as caught:
        decode(data)
    assert caught.value.field == field
    assert reason in str(caught.value)
    assert str(caught.value).startswith(f"{field}: ")


def test_an_integer_literal_past_pythons_digit_limit_is_a_bad_record_not_a_crash():
    previous = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(640)  # the lowest PYTHONINTMAXSTRDIGITS allows
    try:
        with pytest.raises(InvalidEvent, match=r"^record: not parseable \(ValueError: Exceeds the limit"):
            decode(document(logIndex=KeyError)[:-1] + b', "logIndex": ' + b"7" * 700 + b"}")
    finally:
        sys.set_int_max_str_digits(previous)


def test_the_largest_valid_record_is_well_within_the_size_limit():
    largest = transfer(2**256 - 1, address(1), address(2), block=2**63 - 1, timestamp=2**32 - 1, log_index=999_999)
    assert decode(largest.encode()) == largest
    assert len(largest.encode()) < MAX_RECORD_BYTES / 4
