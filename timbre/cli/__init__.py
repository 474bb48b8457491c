"""The ``timbre`` command: the composition root that builds models, stores and services once
and hands them to the library (`timbre`), the ingest jobs (`ingest`) and the API (`app`).

Exit codes: 0 = everything succeeded; 1 = finished, but some inputs failed (each is reported);
2 = could not run (bad settings, missing or broken model files, unusable store).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from timbre.errors import AudioError, StoreLockedError, TimbreError

if TYPE_CHECKING:
    from timbre.settings import Settings
    from timbre.store import VectorStore

EXIT_OK, EXIT_PARTIAL, EXIT_FAILED = 0, 1, 2

app = typer.Typer(
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Timbre: semantic search for audio sample libraries.",
)
models_app = typer.Typer(no_args_is_help=True, help="Model files: download, random bundles.")
app.add_typer(models_app, name="models")
store_app = typer.Typer(
    no_args_is_help=True, help="The vector store: snapshots, re-index publication."
)
app.add_typer(store_app, name="store")


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("httpx", "httpx2", "httpcore", "huggingface_hub", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@app.callback()
def _root(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
) -> None:
    _setup_logging(verbose)


def _fail(exc: BaseException) -> typer.Exit:
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(EXIT_FAILED)


@models_app.command("download")
def models_download(
    to: Annotated[
        Path | None,
        typer.Option("--to", help="Also write a bundle folder here (for images and offline use)."),
    ] = None,
) -> None:
    """Fetch the pinned model files from the hub, verify them, optionally write a bundle."""
    from timbre.embedding.files import download_bundle, resolve_model_files
    from timbre.settings import load_settings

    try:
        settings = load_settings()
        if to is not None:
            download_bundle(settings.models, to)
            typer.echo(f"bundle written to {to}")
        else:
            files = resolve_model_files(settings.models.model_copy(update={"bundle": None}))
            for part, source in files.sources.items():
                typer.echo(f"{part}: {source.ref()}")
        _check_loads(settings, to)
    except TimbreError as exc:
        raise _fail(exc) from exc


def _check_loads(settings: Settings, bundle: Path | None) -> None:
    """Load both paths once: a file that downloads but does not load fails here, not later."""
    from timbre.embedding.embedder import load_audio_embedder, load_text_embedder

    models = settings.models.model_copy(update={"bundle": bundle})
    audio = load_audio_embedder(models)
    text = load_text_embedder(models)
    typer.echo(f"verified: audio and text towers load ({audio.dim}-d, {text.info.clamp3})")


@models_app.command("random")
def models_random(
    target: Annotated[Path, typer.Argument(help="Folder to write the bundle into.")],
    size: Annotated[
        str, typer.Option("--size", help="tiny (tests) or full (official dimensions).")
    ] = "tiny",
    seed: Annotated[int, typer.Option(help="Random seed of the weights.")] = 0,
    safetensors: Annotated[
        bool, typer.Option(help="Write MERT as model.safetensors instead of pytorch_model.bin.")
    ] = False,
) -> None:
    """Write a random-weight bundle in the official file formats (results are meaningless)."""
    from timbre.embedding.files import RANDOM_WEIGHTS_WARNING
    from timbre.embedding.random_bundle import write_random_bundle

    if size not in ("tiny", "full"):
        raise typer.BadParameter("size must be 'tiny' or 'full'", param_hint="--size")
    chosen: Literal["tiny", "full"] = "tiny" if size == "tiny" else "full"
    write_random_bundle(target, chosen, seed=seed, safetensors=safetensors)
    typer.echo(f"wrote a {size} random-weight bundle to {target}")
    typer.echo(f"warning: {RANDOM_WEIGHTS_WARNING}", err=True)


@app.command()
def embed(
    files: Annotated[list[Path] | None, typer.Argument(help="Audio files to embed.")] = None,
    text: Annotated[
        list[str] | None, typer.Option("--text", "-t", help="A text to embed (repeatable).")
    ] = None,
    batch: Annotated[int, typer.Option(help="Files decoded and embedded together.")] = 16,
) -> None:
    """Print one JSON line per input: source, kind, pipeline_version and the vector."""
    from timbre.settings import load_settings

    paths, texts = list(files or []), list(text or [])
    if not paths and not texts:
        raise typer.BadParameter("give audio FILES and/or --text")
    failed = 0
    try:
        settings = load_settings()
        if texts:
            failed += _embed_texts(settings, texts)
        if paths:
            failed += _embed_files(settings, paths, batch)
    except TimbreError as exc:
        raise _fail(exc) from exc
    raise typer.Exit(EXIT_PARTIAL if failed else EXIT_OK)


def _emit(record: dict) -> None:
    sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def _embed_texts(settings: Settings, texts: list[str]) -> int:
    from timbre.embedding.embedder import load_text_embedder

    embedder = load_text_embedder(settings.models)
    failed = 0
    for t in texts:
        try:
            vector = embedder.embed([t])[0]
        except ValueError as exc:
            failed += 1
            _emit({"source": t, "kind": "text", "error": {"code": "bad_text", "message": str(exc)}})
            continue
        _emit(
            {
                "source": t,
                "kind": "text",
                "pipeline_version": embedder.info.pipeline_version,
                "vector": [round(float(x), 7) for x in vector],
            }
        )
    return failed


def _embed_files(settings: Settings, paths: list[Path], batch: int) -> int:
    from timbre.audio.decode import decode_file
    from timbre.embedding.embedder import load_audio_embedder

    embedder = load_audio_embedder(settings.models)
    failed = 0
    for start in range(0, len(paths), batch):
        records: list[dict] = []
        waves, slots = [], []
        for path in paths[start : start + batch]:
            record: dict = {"source": str(path), "kind": "audio"}
            try:
                decoded = decode_file(
                    path,
                    sample_rate=embedder.sample_rate,
                    max_duration_s=settings.audio.max_duration_s,
                    max_file_bytes=settings.audio.max_file_bytes,
                )
            except AudioError as exc:
                failed += 1
                record["error"] = {"code": exc.code, "message": exc.reason}
            else:
                waves.append(decoded.samples)
                slots.append(record)
            records.append(record)
        for record, vector in zip(slots, embedder.embed(waves), strict=True):
            record["pipeline_version"] = embedder.info.pipeline_version
            record["vector"] = [round(float(x), 7) for x in vector]
        for record in records:
            _emit(record)
    return failed


def _ingest_through_service(
    settings: Settings, locked: Exception, roots: tuple[Path, ...], options: Any
) -> tuple[dict[str, Any], int]:
    """Run the job inside the service that owns the embedded store, printing its progress."""
    import time

    import httpx

    from timbre.cli.wiring import read_service_file

    service = read_service_file(settings)
    if service is None:
        raise StoreLockedError(
            f"{locked}; no running Timbre service announced itself to take the job"
        )
    url = service["url"]
    typer.echo(
        f"the embedded store is owned by the service at {url}: handing the job to it", err=True
    )
    headers = {}
    if settings.api.api_key is not None:
        headers["X-API-Key"] = settings.api.api_key.get_secret_value()
    body = {
        "paths": [str(p.expanduser().resolve()) for p in roots],
        "prune": options.prune,
        "dry_run": options.dry_run,
        "profile": options.profile,
    }
    try:
        with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
            started = client.post("/v1/ingest", json=body)
            if started.status_code != 202:
                detail = started.json().get("detail", started.text)
                raise StoreLockedError(
                    f"the service at {url} refused the job ({started.status_code}): {detail}"
                )
            job_id = started.json()["job_id"]
            shown = None
            while True:
                state = client.get(f"/v1/ingest/{job_id}").json()
                progress = state.get("progress") or {}
                line = (
                    f"{progress.get('indexed', 0)}/{progress.get('to_embed', '?')} embedded, "
                    f"{progress.get('failed', 0)} failed"
                )
                if line != shown:
                    typer.echo(f"job {job_id}: {line}", err=True)
                    shown = line
                if state["state"] != "running":
                    break
                time.sleep(1.0)
    except httpx.HTTPError as exc:
        raise StoreLockedError(
            f"{locked}; the service at {url} could not be reached: {exc}"
        ) from exc
    if state["state"] == "failed":
        raise StoreLockedError(f"the job failed inside the service: {state.get('error')}")
    return state["summary"], int(state["exit_code"])


def _open_live(reindex: bool = False) -> tuple[Settings, VectorStore]:
    from timbre.embedding.embedder import describe_models
    from timbre.settings import load_settings
    from timbre.store import open_store

    settings = load_settings()
    return settings, open_store(settings, describe_models(settings.models), reindex=reindex)


def _export(settings: Settings, store: VectorStore) -> dict[str, Any]:
    from timbre.store import snapshots_dir
    from timbre.store.snapshot import export_snapshot

    manifest = export_snapshot(
        store, snapshots_dir(settings.data_dir), source_mode=store.mode, keep=settings.snapshot.keep
    )
    return {
        "snapshot": manifest.name,
        "count": manifest.count,
        "collection": manifest.source_collection,
    }


@store_app.command("snapshot")
def store_snapshot() -> None:
    """Export a FAISS snapshot of the live collection and publish it (the API picks it up)."""
    try:
        settings, store = _open_live()
        try:
            typer.echo(json.dumps(_export(settings, store)))
        finally:
            store.close()
    except TimbreError as exc:
        raise _fail(exc) from exc


@store_app.command("publish")
def store_publish() -> None:
    """Publish the collection a sharded re-index built for the loaded models, once every
    shard's job has finished, and export its snapshot."""
    try:
        settings, store = _open_live(reindex=True)
        try:
            if not store.needs_reindex:
                typer.echo(f"the live collection {store.name} already matches the loaded models")
                return
            generation = store.begin_generation()
            generation.publish()
            typer.echo(json.dumps({"published": generation.name, **_export(settings, store)}))
        finally:
            store.close()
    except TimbreError as exc:
        raise _fail(exc) from exc


def _parse_shard(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    try:
        index, total = (int(part) for part in text.split("/"))
    except ValueError:
        raise typer.BadParameter("use I/N, e.g. 0/4", param_hint="--shard") from None
    if total < 1 or not 0 <= index < total:
        raise typer.BadParameter(f"need 0 <= I < N, got {text}", param_hint="--shard")
    return index, total


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Library folders (or files) to index.")],
    profile: Annotated[
        str | None, typer.Option(help="parallel (fast, default) or sequential (least memory).")
    ] = None,
    workers: Annotated[int | None, typer.Option(help="Decoding worker processes.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Files embedded per batch.")] = None,
    shard: Annotated[
        str | None, typer.Option(help="I/N: index only this worker's share of the library.")
    ] = None,
    prune: Annotated[
        bool, typer.Option(help="Forget paths under these roots that no longer exist.")
    ] = False,
    dry_run: Annotated[bool, typer.Option(help="Report what would change; write nothing.")] = False,
    no_snapshot: Annotated[
        bool, typer.Option(help="Do not export a FAISS snapshot at the end.")
    ] = False,
) -> None:
    """Index a sample library: decode, embed, upsert; safe to re-run or kill at any moment.

    Exit codes: 0 all indexed, 1 finished with failed files (see the failures report),
    2 could not run.
    """
    from ingest.job import options_from_settings, run_ingest
    from timbre.embedding.embedder import describe_models, load_audio_embedder
    from timbre.settings import load_settings
    from timbre.store import open_store

    if profile not in (None, "parallel", "sequential"):
        raise typer.BadParameter("parallel or sequential", param_hint="--profile")
    try:
        settings = load_settings()
        roots = tuple(paths)
        missing = [str(p) for p in roots if not p.exists()]
        if missing:
            raise typer.BadParameter(f"no such library root: {', '.join(missing)}")
        options = options_from_settings(
            settings,
            roots,
            profile=profile,
            workers=workers,
            batch_files=batch_size,
            shard=_parse_shard(shard),
            prune=prune,
            dry_run=dry_run,
        )
        info = describe_models(settings.models)
        try:
            store = open_store(settings, info, reindex=True)
        except StoreLockedError as exc:
            # A running service owns the embedded store: hand the job to it.
            summary, code = _ingest_through_service(settings, exc, roots, options)
            typer.echo(json.dumps(summary, indent=2))
            raise typer.Exit(code) from None
        try:
            embedder = None if dry_run else load_audio_embedder(settings.models)
            result = run_ingest(
                settings,
                options,
                embedder=embedder,  # type: ignore[arg-type]  # unused by a dry run
                model=info,
                store=store,
                snapshot=False if no_snapshot else None,
            )
        finally:
            store.close()
    except TimbreError as exc:
        raise _fail(exc) from exc
    typer.echo(json.dumps(result.summary, indent=2))
    raise typer.Exit(result.exit_code)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to listen on (api.host).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (api.port).")] = None,
) -> None:
    """Run the search service: JSON API, OpenAPI at /docs, and the search page at /."""
    import uvicorn

    from timbre.cli.wiring import SERVICE_FILE, build_app, write_service_file
    from timbre.settings import load_settings

    try:
        settings = load_settings()
        application = build_app(settings)
    except TimbreError as exc:
        raise _fail(exc) from exc
    host = host or settings.api.host
    port = port or settings.api.port
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    write_service_file(settings, f"http://{shown}:{port}")
    try:
        uvicorn.run(application, host=host, port=port, log_level="info")
    finally:
        (settings.data_dir / SERVICE_FILE).unlink(missing_ok=True)


@app.command()
def search(
    text: Annotated[str | None, typer.Argument(help="Describe the sound.")] = None,
    like: Annotated[
        str | None, typer.Option("--like", help="A reference: an audio FILE or an indexed ID.")
    ] = None,
    alpha: Annotated[
        float, typer.Option(help="Weight of the text when both are given (0-1).")
    ] = 0.5,
    genre: Annotated[list[str] | None, typer.Option(help="Genre (repeatable: any of).")] = None,
    instrument: Annotated[list[str] | None, typer.Option(help="Instrument (repeatable).")] = None,
    kind: Annotated[str | None, typer.Option(help="one_shot or loop.")] = None,
    key: Annotated[
        list[str] | None, typer.Option(help="Musical key, e.g. Am (repeatable).")
    ] = None,
    pack: Annotated[list[str] | None, typer.Option(help="Pack (repeatable).")] = None,
    bpm: Annotated[str | None, typer.Option(help="BPM range, e.g. 120-130.")] = None,
    top_k: Annotated[int, typer.Option("-k", "--top-k", help="Results wanted.")] = 10,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the JSON the API returns.")
    ] = False,
) -> None:
    """Search from the terminal: through a running service, or directly on the embedded store."""
    from app.schemas import FilterIn
    from timbre.cli.wiring import read_service_file
    from timbre.settings import load_settings

    if not text and not like:
        raise typer.BadParameter("give a TEXT, a --like reference, or both")
    raw = {
        "genre": genre,
        "instrument": instrument,
        "kind": kind,
        "key": key,
        "pack": pack,
        "bpm": bpm,
    }
    filter_json = {k: v for k, v in raw.items() if v}
    try:
        FilterIn.model_validate(filter_json)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    try:
        settings = load_settings()
        route, body = _search_body(text, like, alpha, filter_json, top_k)
        service = read_service_file(settings)
        if service is not None:
            data = _search_http(settings, service["url"], route, body)
        else:
            data = _search_local(settings, route, body)
    except TimbreError as exc:
        raise _fail(exc) from exc
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    typer.echo(f"{len(data['hits'])} results from {data['engine']} in {data['took_ms']:.1f} ms")
    for rank, hit in enumerate(data["hits"], 1):
        facts = " ".join(
            str(x)
            for x in (
                hit.get("instrument"),
                hit.get("kind"),
                hit.get("bpm") and f"{hit['bpm']}bpm",
                hit.get("key"),
            )
            if x
        )
        typer.echo(f"{rank:>3}. {hit['score']:.3f}  {facts:<28} {hit.get('path')}")


def _search_body(
    text: str | None, like: str | None, alpha: float, filter_json: dict[str, Any], top_k: int
) -> tuple[str, dict[str, Any]]:
    """The API route and JSON body of a terminal search (the local path reads the same)."""
    body: dict[str, Any] = {"top_k": top_k, "filter": filter_json or None}
    if text:
        body["query"] = text
    if like:
        if Path(like).exists():
            body["path"] = str(Path(like).resolve())
        else:
            body["id"] = like
        if text:
            body["alpha"] = alpha
    route = "hybrid" if text and like else ("audio" if like else "text")
    return route, body


def _search_http(settings: Settings, url: str, route: str, body: dict[str, Any]) -> dict[str, Any]:
    import httpx

    headers = {}
    if settings.api.api_key is not None:
        headers["X-API-Key"] = settings.api.api_key.get_secret_value()
    with httpx.Client(base_url=url, headers=headers, timeout=120) as client:
        if "path" in body:  # the service may not see this machine's files: upload them
            path = Path(body.pop("path"))
            form = {
                k: (json.dumps(v) if k == "filter" else str(v))
                for k, v in body.items()
                if v is not None
            }
            with path.open("rb") as handle:
                response = client.post(
                    f"/v1/search/{route}", data=form, files={"file": (path.name, handle)}
                )
        else:
            response = client.post(f"/v1/search/{route}", json=body)
    data = response.json()
    if response.status_code != 200:
        raise TimbreError(
            f"the service answered {response.status_code}: {data.get('detail', data)}"
        )
    return dict(data)


def _search_local(settings: Settings, route: str, body: dict[str, Any]) -> dict[str, Any]:
    from app.schemas import FilterIn
    from timbre.cli.wiring import build_service
    from timbre.search import AudioRef

    service = build_service(settings)
    service.snapshots.refresh()
    search_filter = FilterIn.model_validate(body["filter"] or {}).to_filter()
    ref = None
    if "path" in body:
        path = Path(body["path"])
        ref = AudioRef(upload=path.read_bytes(), upload_name=path.name)
    elif "id" in body:
        ref = AudioRef(id=body["id"])
    top_k = body["top_k"]
    try:
        if route == "hybrid" and ref is not None:
            result = service.search_hybrid(
                body["query"], ref, alpha=body["alpha"], top_k=top_k, filter=search_filter
            )
        elif route == "audio" and ref is not None:
            result = service.search_audio(ref, top_k=top_k, filter=search_filter)
        else:
            result = service.search_text(body["query"], top_k=top_k, filter=search_filter)
    finally:
        service.store.close()
    hits = [{"id": h.id, "score": h.score, **h.payload} for h in result.hits]
    return {"engine": result.engine, "took_ms": result.took_ms, "query": result.query, "hits": hits}


def _hub_reachable(timeout_s: float = 3.0) -> bool:
    import socket
    from urllib.parse import urlparse

    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname
    try:
        socket.create_connection((host or "huggingface.co", 443), timeout=timeout_s).close()
    except OSError:
        return False
    return True


@app.command()
def quickstart(
    library: Annotated[
        Path | None, typer.Argument(help="Your sample folder; default: a generated demo library.")
    ] = None,
) -> None:
    """Index a library on the embedded store and try a few searches: the whole path in one go.

    Uses the configured models (the Hugging Face hub by default). Where they cannot be had
    (no network, no bundle), it says so and uses a random-weight test bundle instead, which
    exercises every step but makes the search results meaningless.
    """
    from timbre.embedding.files import RANDOM_WEIGHTS_WARNING, resolve_model_files
    from timbre.settings import load_settings

    settings = load_settings()
    data = settings.data_dir
    env: dict[str, str] = {}
    if settings.models.bundle is None and not _hub_reachable():
        # Without a network, huggingface_hub would retry for half a minute: use the cache only.
        os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        resolve_model_files(settings.models)
    except TimbreError as exc:
        from timbre.embedding.random_bundle import write_random_bundle

        bundle = data / "models" / "random-tiny"
        typer.echo(f"models unavailable ({exc})", err=True)
        typer.echo(
            f"warning: using a random-weight test bundle at {bundle}. {RANDOM_WEIGHTS_WARNING}",
            err=True,
        )
        if not (bundle / "timbre-models.json").is_file():
            write_random_bundle(bundle, "tiny")
        env["TIMBRE_MODELS__BUNDLE"] = str(bundle)
    if library is None:
        from ingest.synthetic import make_library

        library = data / "demo-library"
        if not library.exists():
            typer.echo(f"generating a demo sample library in {library} ...", err=True)
            make_library(library)
    env["TIMBRE_API__LIBRARY_ROOTS"] = json.dumps([str(library.resolve())])
    os.environ.update(env)
    typer.echo(
        f"indexing {library} into {data} (embedded Qdrant Edge + FAISS snapshot) ...", err=True
    )
    steps = (
        ["ingest", str(library)],
        ["search", "punchy kick", "-k", "5"],
        ["search", "warm pad", "--kind", "loop", "-k", "3"],
    )
    for argv in steps:
        typer.echo(f"\n$ timbre {' '.join(argv)}", err=True)
        try:
            app(argv, standalone_mode=False)
        except typer.Exit as done:
            if done.exit_code not in (EXIT_OK, EXIT_PARTIAL):
                raise
    exports = " ".join(f"{k}='{v}'" for k, v in env.items())
    typer.echo(
        f"\nNext: {exports} timbre serve   # then open http://127.0.0.1:{settings.api.port}/",
        err=True,
    )


def main() -> None:
    app()
