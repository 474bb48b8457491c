"""Server requests are retried on transient failures only, and a bounded number of times."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from qdrant_client import QdrantClient
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from tests.support.store_factory import make_dataset, open_test_store
from timbre.errors import StoreError
from timbre.store.server import call_with_retries, is_transient

pytestmark = pytest.mark.filterwarnings("ignore:Payload indexes have no effect")


def _http_error(status: int) -> UnexpectedResponse:
    return UnexpectedResponse(status, "", b'{"status":{"error":"x"}}', httpx.Headers())


class FlakyClient:
    """A real in-memory client whose upserts fail first with the given errors."""

    def __init__(self, inner: QdrantClient, failures: list[Exception]) -> None:
        self._inner = inner
        self.failures = failures
        self.upsert_calls = 0

    def upsert(self, *args: Any, **kwargs: Any) -> Any:
        self.upsert_calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return self._inner.upsert(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


@pytest.mark.parametrize(
    ("exc", "transient"),
    [
        (_http_error(503), True),
        (_http_error(429), True),
        (_http_error(502), True),
        (_http_error(400), False),
        (_http_error(404), False),
        (_http_error(500), False),
        (ResponseHandlingException(httpx.ConnectError("refused")), True),
        (ResponseHandlingException(httpx.ReadTimeout("slow")), True),
        (ResponseHandlingException(ValueError("bad json")), False),
        (httpx.ConnectError("refused"), True),
        (ConnectionResetError(), True),
        (ValueError("bug"), False),
    ],
)
def test_what_counts_as_transient(exc: Exception, transient: bool) -> None:
    assert is_transient(exc) is transient


def test_upserts_survive_transient_server_errors(tmp_path: Path) -> None:
    client = FlakyClient(
        QdrantClient(":memory:"),
        [_http_error(503), ResponseHandlingException(httpx.ReadTimeout("t"))],
    )
    store = open_test_store("memory", tmp_path, client=client, max_attempts=3)
    store.live().upsert(make_dataset(10, seed=1).points)
    assert client.upsert_calls == 3
    assert store.live().count() == 10


def test_retries_are_bounded(tmp_path: Path) -> None:
    client = FlakyClient(QdrantClient(":memory:"), [_http_error(503)] * 5)
    store = open_test_store("memory", tmp_path, client=client, max_attempts=3)
    with pytest.raises(StoreError, match="after 3 attempts") as err:
        store.live().upsert(make_dataset(10, seed=1).points)
    assert isinstance(err.value.__cause__, UnexpectedResponse)
    assert client.upsert_calls == 3


def test_a_permanent_error_is_not_retried(tmp_path: Path) -> None:
    client = FlakyClient(QdrantClient(":memory:"), [_http_error(400)])
    store = open_test_store("memory", tmp_path, client=client, max_attempts=4)
    with pytest.raises(StoreError, match=r"upsert .*failed"):
        store.live().upsert(make_dataset(10, seed=1).points)
    assert client.upsert_calls == 1


def test_backoff_doubles_and_honours_retry_after() -> None:
    from qdrant_client.common.client_exceptions import ResourceExhaustedResponse

    waits: list[float] = []
    failures: list[Exception] = [
        _http_error(503),
        _http_error(503),
        ResourceExhaustedResponse("busy", 7),
    ]

    def flaky() -> str:
        if failures:
            raise failures.pop(0)
        return "ok"

    assert (
        call_with_retries(flaky, what="test", max_attempts=4, backoff_s=0.5, sleep=waits.append)
        == "ok"
    )
    assert waits == [0.5, 1.0, 7.0]
