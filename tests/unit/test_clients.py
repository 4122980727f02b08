"""boto3 clients: one session per process, each client made when it is first used."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
from medsum.adapters import clients
from medsum.adapters.sns import SnsEventPublisher


class _FakeClient:
    def __init__(self, service: str) -> None:
        self.service = service
        self.calls: list[dict[str, Any]] = []

    def publish(self, **kwargs: Any) -> dict[str, str]:
        self.calls.append(kwargs)
        return {"MessageId": "m-1"}


class _FakeSession:
    def __init__(self) -> None:
        self.made: list[str] = []

    def client(self, service: str, config: Any = None) -> _FakeClient:
        self.made.append(service)
        return _FakeClient(service)


@pytest.fixture
def session(monkeypatch: pytest.MonkeyPatch) -> Iterator[_FakeSession]:
    fake = _FakeSession()
    monkeypatch.setattr(clients, "session", lambda: fake)
    clients.client.cache_clear()
    clients.bedrock_client.cache_clear()
    yield fake
    clients.client.cache_clear()
    clients.bedrock_client.cache_clear()


def test_an_adapter_built_without_calls_makes_no_client(session: _FakeSession) -> None:
    # When: e.g. the api function builds its SNS publisher, which its first request does not use
    SnsEventPublisher("arn:aws:sns:us-east-1:123456789012:events")

    # Then
    assert session.made == []


def test_a_client_is_made_once_on_first_use_and_answers_every_call(session: _FakeSession) -> None:
    # Given
    sns = clients.client("sns")

    # When
    first = sns.publish(TopicArn="t", Message="1")
    second = sns.publish(TopicArn="t", Message="2")

    # Then
    assert session.made == ["sns"]
    assert first == second == {"MessageId": "m-1"}
    assert sns.service == "sns"
    assert clients.client("sns") is sns


def test_every_client_of_the_process_shares_one_session(session: _FakeSession) -> None:
    # When
    clients.client("dynamodb").service  # noqa: B018 - first use
    clients.client("sqs").service  # noqa: B018
    clients.bedrock_client(120, bulk=True).service  # noqa: B018

    # Then
    assert session.made == ["dynamodb", "sqs", "bedrock-runtime"]


def test_a_copy_of_an_unused_client_does_not_recurse(session: _FakeSession) -> None:
    # When
    duplicate = copy.copy(clients.client("kms"))

    # Then: the copy makes its own client on first use
    assert duplicate.service == "kms"
