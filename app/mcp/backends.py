"""What answers the MCP tools: the search service in this process, or a running one over HTTP.

Both take and give the HTTP API's models, so a result does not depend on which one answered:
:class:`LocalBackend` runs the routes' own functions, :class:`HttpBackend` calls the routes and
raises their problems as :class:`ProblemError`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError

from app.routes.common import AudioUrl, filter_of, hit_out, result_out
from app.routes.kits import kit_out, project_of
from app.routes.recommend import run_recommend
from app.routes.search import batch_out, run_audio, run_batch, run_text
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
from app.schemas.kits import BuildKitIn, KitOut
from app.schemas.mcp import CollectionItemsOut
from app.schemas.recommend import RecommendIn
from timbre.collections_db import CollectionInfo, Collections
from timbre.errors import NotFoundError
from timbre.kits_db import Kits
from timbre.search import AudioRef, SearchResult, SearchService
from timbre.search.kits import KitsService
from timbre.settings import ApiSettings

M = TypeVar("M", bound=BaseModel)


class ProblemError(Exception):
    """A problem answered by the service over HTTP, raised again on this side."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.detail)
        self.problem = problem


class Backend(Protocol):
    """The operations behind the tools, in the HTTP API's models."""

    def search_text(self, body: TextSearchIn) -> SearchOut: ...

    def search_audio(self, body: AudioSearchIn) -> SearchOut:
        """More like a reference; hybrid when ``body`` is a :class:`HybridSearchIn`."""
        ...

    def search_batch(self, body: BatchSearchIn) -> BatchOut: ...

    def recommend(self, body: RecommendIn) -> SearchOut: ...

    def item(self, item_id: str) -> HitOut: ...

    def facets(self, fields: Sequence[str], filter: FilterIn | None) -> FacetsOut: ...

    def collections(self) -> CollectionsOut: ...

    def collection(self, name: str) -> CollectionItemsOut: ...

    def add_to_collection(self, name: str, ids: Sequence[str]) -> CollectionOut: ...

    def build_kit(self, body: BuildKitIn) -> KitOut:
        """A filled kit, saved when ``body`` names it."""
        ...


def file_urls(item_id: str, payload: dict[str, Any]) -> str:
    """A ``file://`` URL of the sample where it was indexed (no HTTP server to stream it)."""
    path = payload.get("path")
    return Path(path).resolve().as_uri() if path else ""


class LocalBackend:
    """The search service and collections of this process, under the HTTP API's limits
    (``api``); ``audio_url`` makes a hit's playable URL."""

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
        self._kits: KitsService | None = None

    def _out(self, result: SearchResult) -> SearchOut:
        return result_out(self._audio_url, result)

    def search_text(self, body: TextSearchIn) -> SearchOut:
        return self._out(run_text(self.service, self.api, body))

    def search_audio(self, body: AudioSearchIn) -> SearchOut:
        ref = AudioRef(id=body.id, path=body.path)
        return self._out(run_audio(self.service, self.api, body, ref))

    def search_batch(self, body: BatchSearchIn) -> BatchOut:
        return batch_out(body, run_batch(self.service, self.api, body), self._out)

    def recommend(self, body: RecommendIn) -> SearchOut:
        return self._out(run_recommend(self.service, self.api, body))

    def item(self, item_id: str) -> HitOut:
        return hit_out(self._audio_url, None, item_id, self.service.library.item(item_id))

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

    def build_kit(self, body: BuildKitIn) -> KitOut:
        # The kits file lives beside the collections one, in the same data dir.
        if self._kits is None:
            self._kits = KitsService(Kits.in_data_dir(self._collections.path.parent), self.service)
        context, only = project_of(self._kits, body.context)
        if body.name is None:
            view = self._kits.preview(body.pads, body.slots, context, only_fitting=only)
        else:
            view = self._kits.create(body.name, body.pads, body.slots, context, only_fitting=only)
        return kit_out(self._audio_url, view)


class _CollectionReply(CollectionOut):
    """The service's collection, its items as they come (some may be marked ``missing``)."""

    items: list[dict[str, Any]]


def _collection(info: CollectionInfo) -> CollectionOut:
    return CollectionOut.model_validate(info, from_attributes=True)


class HttpBackend:
    """A running Timbre service at ``url`` (its ``service.json``), through its HTTP API;
    ``timeout_s`` per request (a cold service may load its text model first)."""

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
                Problem.of(
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
                Problem.of(
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

    def recommend(self, body: RecommendIn) -> SearchOut:
        return self._call(SearchOut, "POST", "/v1/search/recommend", json=self._json(body))

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

    def build_kit(self, body: BuildKitIn) -> KitOut:
        data = self._json(body)
        if body.name is None:
            return self._call(KitOut, "POST", "/v1/search/kit", json=data)
        return self._call(KitOut, "POST", "/v1/kits", json=data)
