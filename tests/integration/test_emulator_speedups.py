"""The offline stack's speed-ups of moto keep moto's behaviour: a cancelled transaction changes nothing
(items it updated, put or deleted are as before), a committed one changes everything; SQS visibility
and delays still hold."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from medsum_local.emulator import speed_up_dynamodb_transactions, speed_up_sqs
from moto import mock_aws


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    speed_up_dynamodb_transactions()
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        for name in ("a", "b"):
            client.create_table(
                TableName=name,
                KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )
        client.put_item(TableName="a", Item={"pk": {"S": "kept"}, "n": {"N": "1"}})
        client.put_item(TableName="b", Item={"pk": {"S": "gone"}, "n": {"N": "1"}})
        yield client


def _items(client: Any, table: str) -> dict[str, str]:
    return {i["pk"]["S"]: i["n"]["N"] for i in client.scan(TableName=table)["Items"]}


def _transaction(guard: str) -> list[dict[str, Any]]:
    return [
        {
            "Update": {
                "TableName": "a",
                "Key": {"pk": {"S": "kept"}},
                "UpdateExpression": "SET n = :two",
                "ExpressionAttributeValues": {":two": {"N": "2"}},
            }
        },
        {"Put": {"TableName": "a", "Item": {"pk": {"S": "new"}, "n": {"N": "9"}}}},
        {
            "Delete": {
                "TableName": "b",
                "Key": {"pk": {"S": "gone"}},
                "ConditionExpression": "n = :n",
                "ExpressionAttributeValues": {":n": {"N": guard}},
            }
        },
    ]


def test_a_cancelled_transaction_changes_nothing(dynamodb: Any) -> None:
    with pytest.raises(ClientError) as raised:
        dynamodb.transact_write_items(TransactItems=_transaction(guard="7"))
    assert raised.value.response["Error"]["Code"] == "TransactionCanceledException"
    assert _items(dynamodb, "a") == {"kept": "1"}
    assert _items(dynamodb, "b") == {"gone": "1"}


def test_a_committed_transaction_changes_everything(dynamodb: Any) -> None:
    dynamodb.transact_write_items(TransactItems=_transaction(guard="1"))
    assert _items(dynamodb, "a") == {"kept": "2", "new": "9"}
    assert _items(dynamodb, "b") == {}


def test_sqs_visibility_and_delay_still_hold() -> None:
    speed_up_sqs()
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        url = sqs.create_queue(QueueName="q")["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=60)
        sqs.send_message(QueueUrl=url, MessageBody="now")
        first = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=60)["Messages"]
        assert [m["Body"] for m in first] == ["now"]  # the delayed one is not visible yet
        assert sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []) == []
