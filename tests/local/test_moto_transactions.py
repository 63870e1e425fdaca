"""The local stack's TransactWriteItems snapshot rolls back exactly as moto's whole-table copy does."""

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from app.local import moto_transactions

TABLE = "rollback-test"


@pytest.fixture(params=["moto as shipped", "touched-items snapshot"])
def dynamodb(request):
    if request.param == "touched-items snapshot":
        moto_transactions.install()
    try:
        with mock_aws():
            client = boto3.client("dynamodb", region_name="us-east-1")
            client.create_table(
                TableName=TABLE,
                KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )
            for name, n in (("a", 1), ("b", 2), ("c", 3)):
                client.put_item(TableName=TABLE, Item={"id": {"S": name}, "n": {"N": str(n)}})
            yield client
    finally:
        moto_transactions.uninstall()


def table(client):
    items = client.scan(TableName=TABLE)["Items"]
    return {item["id"]["S"]: int(item["n"]["N"]) for item in items}


def update(name, add, condition=None):
    op = {
        "TableName": TABLE,
        "Key": {"id": {"S": name}},
        "UpdateExpression": "SET n = n + :add",
        "ExpressionAttributeValues": {":add": {"N": str(add)}},
    }
    if condition is not None:
        op["ConditionExpression"] = "n = :expected"
        op["ExpressionAttributeValues"][":expected"] = {"N": str(condition)}
    return {"Update": op}


def put(name, n):
    return {"Put": {"TableName": TABLE, "Item": {"id": {"S": name}, "n": {"N": str(n)}}}}


def test_a_cancelled_transaction_leaves_every_item_as_it_was(dynamodb):
    with pytest.raises(ClientError, match="TransactionCanceled"):
        # the update of `a` and the put of `d` run before the failing condition on `b`
        dynamodb.transact_write_items(TransactItems=[update("a", 10), put("d", 4), update("b", 1, condition=99)])
    assert table(dynamodb) == {"a": 1, "b": 2, "c": 3}
    dynamodb.transact_write_items(TransactItems=[update("a", 10), put("d", 4), update("b", 1, condition=2)])
    assert table(dynamodb) == {"a": 11, "b": 3, "c": 3, "d": 4}


def test_after_a_rollback_the_table_takes_further_writes(dynamodb):
    with pytest.raises(ClientError):
        dynamodb.transact_write_items(TransactItems=[update("c", 5), update("a", 1, condition=0)])
    dynamodb.put_item(TableName=TABLE, Item={"id": {"S": "e"}, "n": {"N": "5"}})
    dynamodb.transact_write_items(TransactItems=[update("c", 5)])
    assert table(dynamodb) == {"a": 1, "b": 2, "c": 8, "e": 5}
