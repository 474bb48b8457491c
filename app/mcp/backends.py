"""What answers the MCP tools: the search service in this process, or a running one over HTTP.

Both take the HTTP API's request models and give back its response models, so a tool's result
does not depend on which one answered. :class:`LocalBackend` does what the routes do (limits,
filters, hits) with the same helpers; :class:`HttpBackend` calls the routes themselves and
turns their problem bodies into :class:`~app.mcp.errors.ProblemError`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError

from app.deps import paging
from app.mcp.errors import ProblemError, problem
from app.routes.common import filter_of, hit_out
from app.routes.search import batch_queries, batch_result
from app.schemas import (
    AudioSearchIn,
    BatchOut,
    BatchSearchIn,
    FacetsOut,
    FilterIn,
    HitOut,
    HybridSearchIn,
    Problem,
    SearchOut,
    TextSearchIn,
)
from app.schemas.collections import CollectionOut, CollectionsOut
from app.schemas.mcp import (
    CollectionItemsOut,
)
from timbre.collections_db import CollectionInfo, Collections
from timbre.errors import NotFoundError
from timbre.search import AudioRef, SearchResult, SearchService
from timbre.settings import ApiSettings
from timbre.store import Hit

M = TypeVar("M", bound=BaseModel)

AudioUrl = Callable[[str, dict[str, Any]], str]
"""The playable URL of an item, from its id and payload."""


class Backend(Protocol):
    """The operations behind the tools, in the HTTP API's models."""

    def search_text(self, body: TextSearchIn) -> SearchOut: ...

    def search_audio(self, body: AudioSearchIn) -> SearchOut:
        """More like a reference; hybrid when ``body`` is a :class:`HybridSearchIn`."""
        ...

    def search_batch(self, body: BatchSearchIn) -> BatchOut: ...

    def item(self, item_id: str) -> HitOut: ...

    def facets(self, fields: Sequence[str], filter: FilterIn | None) -> FacetsOut: ...

    def collections(self) -> CollectionsOut: ...

    def collection(self, name: str) -> CollectionItemsOut: ...

    def add_to_collection(self, name: str, ids: Sequence[str]) -> CollectionOut: ...


def template_urls(template: str) -> AudioUrl:
    """URLs from the API's audio route template (``.../v1/items/{id}/audio``)."""
    return lambda item_id, _: template.replace("%7Bid%7D", item_id).replace("{id}", item_id)


def file_urls(item_id: str, payload: dict[str, Any]) -> str:
    """A ``file://`` URL of the sample where it was indexed (no HTTP server to stream it)."""
    path = payload.get("path")
    return Path(path).resolve().as_uri() if path else ""


class LocalBackend:
    """The search service and collections of this process.

    Args:
        service: answers every query.
        api: the ``api`` settings (the same limits as the HTTP API).
        collections: the collections file of the data dir.
        audio_url: how a hit's playable URL is made.
    """

    def __init__(
        self,
        service: SearchService,
        api: ApiSettings,
        collections: Collections,
        audio_url: AudioUrl,
    ) -> None:
        self.service = service
        self.api = api
        self._collections = collections
        self._audio_url = audio_url

    def _hit(self, hit: Hit | None, item_id: str, payload: dict[str, Any]) -> HitOut:
        return hit_out(self._audio_url(item_id, payload), hit, item_id, payload)

    def _out(self, result: SearchResult) -> SearchOut:
        return SearchOut(
            engine=result.engine,  # type: ignore[arg-type]  # "faiss" or "qdrant"
            took_ms=round(result.took_ms, 3),
            query=result.query,
            hits=[self._hit(h, h.id, h.payload) for h in result.hits],
        )

    def search_text(self, body: TextSearchIn) -> SearchOut:
        top_k, offset = paging(self.api, body.top_k, body.offset)
        result = self.service.search_text(
            body.query, top_k=top_k, offset=offset, filter=filter_of(self.api, body.filter)
        )
        return self._out(result)

    def search_audio(self, body: AudioSearchIn) -> SearchOut:
        top_k, offset = paging(self.api, body.top_k, body.offset)
        ref = AudioRef(id=body.id, path=body.path)
        search_filter = filter_of(self.api, body.filter)
        if isinstance(body, HybridSearchIn):
            result = self.service.search_hybrid(
                body.query, ref, alpha=body.alpha, top_k=top_k, offset=offset, filter=search_filter
            )
        else:
            result = self.service.search_audio(
                ref, top_k=top_k, offset=offset, filter=search_filter
            )
        return self._out(result)

    def search_batch(self, body: BatchSearchIn) -> BatchOut:
        results = self.service.search_batch(batch_queries(body, self.api), distinct=body.distinct)
        return BatchOut(
            took_ms=round(max(r.took_ms for r in results), 3),
            results=[
                batch_result(item.slot, r, self._out(r))
                for item, r in zip(body.queries, results, strict=True)
            ],
        )

    def item(self, item_id: str) -> HitOut:
        return self._hit(None, item_id, self.service.library.item(item_id))

    def facets(self, fields: Sequence[str], filter: FilterIn | None) -> FacetsOut:
        found = self.service.library.facets(fields, filter=filter_of(self.api, filter))
        return FacetsOut.model_validate(found)

    def collections(self) -> CollectionsOut:
        return CollectionsOut(collections=[_collection(c) for c in self._collections.list_all()])

    def collection(self, name: str) -> CollectionItemsOut:
        info = self._collections.get(name)
        items = []
        for entry in self._collections.items(info.name):
            try:
                items.append(self.item(entry.id))
            except NotFoundError:
                continue  # no longer indexed: the collection keeps it for a later re-index
        return CollectionItemsOut(**_collection(info).model_dump(), items=items)

    def add_to_collection(self, name: str, ids: Sequence[str]) -> CollectionOut:
        hints = [self.service.library.item(i).get("path") for i in ids]
        return _collection(self._collections.add(name, ids, path_hints=hints))


class _CollectionReply(CollectionOut):
    """The service's collection, its items as they come (some may be marked ``missing``)."""

    items: list[dict[str, Any]]


def _collection(info: CollectionInfo) -> CollectionOut:
    return CollectionOut(
        name=info.name, count=info.count, created_at=info.created_at, updated_at=info.updated_at
    )


class HttpBackend:
    """A running Timbre service, through its HTTP API.

    Args:
        url: the service's base URL (from its ``service.json``).
        api_key: sent as ``X-API-Key`` when the service needs one.
        timeout_s: per request (a cold service may load its text model first).
        transport: an httpx transport (tests); the network by default.
    """

    def __init__(
        self,
        url: str,
        *,
        api_key: str | None,
        timeout_s: float,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url
        headers = {"X-API-Key": api_key} if api_key else {}
        self._client = httpx.Client(
            base_url=url, headers=headers, timeout=timeout_s, transport=transport
        )

    def close(self) -> None:
        self._client.close()

    def _call(self, model: type[M], method: str, path: str, **kwargs: Any) -> M:
        try:
            response = self._client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ProblemError(
                problem(
                    503,
                    "Service unavailable",
                    f"the Timbre service at {self.url} could not be reached: {exc}",
                    "unavailable",
                )
            ) from exc
        try:
            data = response.json()
        except json.JSONDecodeError:
            data = None
        if response.is_success and data is not None:
            return model.model_validate(data)
        try:
            raise ProblemError(Problem.model_validate(data))
        except ValidationError:
            raise ProblemError(
                problem(
                    response.status_code if response.status_code >= 400 else 502,
                    "Service error",
                    f"the Timbre service at {self.url} answered {response.status_code}",
                    "service_error",
                )
            ) from None

    @staticmethod
    def _json(body: BaseModel) -> dict[str, Any]:
        return body.model_dump(mode="json", exclude_none=True)

    def search_text(self, body: TextSearchIn) -> SearchOut:
        return self._call(SearchOut, "POST", "/v1/search/text", json=self._json(body))

    def search_audio(self, body: AudioSearchIn) -> SearchOut:
        route = "hybrid" if isinstance(body, HybridSearchIn) else "audio"
        return self._call(SearchOut, "POST", f"/v1/search/{route}", json=self._json(body))

    def search_batch(self, body: BatchSearchIn) -> BatchOut:
        return self._call(BatchOut, "POST", "/v1/search/batch", json=self._json(body))

    def item(self, item_id: str) -> HitOut:
        return self._call(HitOut, "GET", f"/v1/items/{quote(item_id, safe='')}")

    def facets(self, fields: Sequence[str], filter: FilterIn | None) -> FacetsOut:
        params: list[tuple[str, str]] = [("field", f) for f in fields]
        if filter is not None:
            params.append(("filter", json.dumps(self._json(filter))))
        return self._call(FacetsOut, "GET", "/v1/facets", params=params)

    def collections(self) -> CollectionsOut:
        return self._call(CollectionsOut, "GET", "/v1/collections")

    def collection(self, name: str) -> CollectionItemsOut:
        reply = self._call(_CollectionReply, "GET", f"/v1/collections/{quote(name, safe='')}")
        # As the local backend does: a sample no longer indexed (``missing``) is left out.
        items = [i for i in reply.items if not i.get("missing")]
        return CollectionItemsOut.model_validate({**reply.model_dump(), "items": items})

    def add_to_collection(self, name: str, ids: Sequence[str]) -> CollectionOut:
        return self._call(
            CollectionOut,
            "POST",
            f"/v1/collections/{quote(name, safe='')}/items",
            json={"ids": list(ids)},
        )
