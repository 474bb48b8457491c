"""One typed Settings object for every Timbre process.

Precedence, lowest first: ``config/default.yaml`` (every default, once) < the overlay YAML named
by ``TIMBRE_CONFIG`` < ``TIMBRE_<FIELD>`` variables (``TIMBRE_MODELS__BUNDLE``) < arguments to
:func:`load_settings`. No Python defaults: a value missing from the YAML fails at start-up.
Field docstrings are the descriptions in ``docs/settings.md``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from timbre.errors import ConfigError
from timbre.settings_models import ModelsSettings, PerDevice, Section

DEFAULT_CONFIG_FILE = Path(__file__).resolve().parent.parent / "config" / "default.yaml"
CONFIG_ENV = "TIMBRE_CONFIG"
"""Names an overlay YAML file read on top of the defaults."""


class AudioSettings(Section):
    """Limits on the audio Timbre accepts."""

    max_duration_s: float = Field(gt=0.0)
    """Longest audio accepted (seconds), refused before decoding so memory stays bounded."""
    max_file_bytes: int = Field(gt=0)
    """Largest file accepted (bytes), refused before it is read."""


class QdrantSettings(Section):
    """Where vectors and payloads live: the embedded Qdrant Edge shard or a Qdrant server."""

    url: str | None
    """Qdrant server URL (e.g. http://qdrant:6333). null = embedded: a Qdrant Edge shard under
    <data_dir>/qdrant-edge, one process at a time, with the same schema and results."""
    api_key: SecretStr | None
    """API key sent to the server. null = none."""
    prefer_grpc: bool
    """Talk gRPC (port 6334), faster for bulk upserts, instead of REST (6333, passes proxies)."""
    collection: str = Field(pattern=r"^[A-Za-z0-9_]+$")
    """The live collection; builds are <name>-<model key hash>-<generation>: [A-Za-z0-9_] only."""
    timeout_s: int = Field(ge=1)
    """Server request timeout (seconds): rides out a busy optimiser, never hangs a job."""
    max_attempts: int = Field(ge=1)
    """Attempts per server request on transient errors (writes are idempotent: safe to retry)."""
    retry_backoff_s: float = Field(ge=0.0)
    """First retry back-off (seconds), doubled at each further attempt."""
    upsert_batch: int = Field(ge=1)
    """Points per upsert request: ~0.8 MB of vectors, under proxies' common 1 MB limit."""
    scroll_batch: int = Field(ge=1)
    """Points per scroll page when exporting or pruning (~3 MB of vectors)."""
    keep_generations: int = Field(ge=1)
    """Versioned collections kept after a re-index swap, the live one included (for rollback)."""


class DiskSettings(Section):
    """Free space kept on the data dir's file system (see :mod:`timbre.diskspace`)."""

    min_free_bytes: int = Field(ge=0)
    """Bytes kept free beyond a store write, else it is refused as disk full (exit 2, HTTP 507)
    before a full disk kills the embedded store (SIGBUS). 0 = only the batch and the store."""


class SnapshotSettings(Section):
    """The FAISS exact snapshot that serves unfiltered queries."""

    keep: int = Field(ge=1)
    """Published snapshots kept, the live one included: one an API may hold, one for rollback."""
    mmap_min_bytes: int = Field(ge=0)
    """Memory-map the snapshot from this size of vectors.npy (bytes): its rows stay on disk."""
    verify_checksums: bool
    """Verify snapshot files' sha256 on load (again only once a file changed: VERIFIED.json)."""
    reverify_unchanged: bool
    """Hash every file at every load, even unchanged ones (for storage that may decay)."""
    quantised_min_vectors: int = Field(ge=0)
    """From this many vectors, an SQ8 first pass whose candidates are re-scored exactly, with
    a bound that proves the top k exact; below it the flat scan is as fast and keeps no codes."""
    scan_threads: int = Field(ge=0)
    """Threads of the SQ8 first pass. 0 = every core this process may run on."""
    filtered_min_points: int = Field(ge=0)
    """Filtered queries matching this many points use the snapshot's scan; fewer go to Qdrant."""


class IngestSettings(Section):
    """Defaults of ``timbre ingest`` and the vocabularies that read a library's names."""

    profile: Literal["sequential", "parallel"]
    """parallel: decoding workers feed one model loop (fast); sequential: least memory."""
    workers: int = Field(ge=0)
    """Decoding worker processes: decoding is ~2% of the work, so one keeps the models fed."""
    batch_files: PerDevice
    """Files embedded per batch: their equal-length windows and segments share passes."""
    batch_audio_s: float = Field(gt=0.0)
    """A batch is flushed early at this much audio (seconds), bounding memory on long loops."""
    progress_interval_s: float = Field(gt=0.0)
    """Seconds between progress lines when output is not a terminal."""
    snapshot: bool
    """Export the FAISS snapshot when a job ends, so the API serves what was just indexed."""
    reanalyse_batch: int = Field(ge=1)
    """Points per page and payload update of `timbre reanalyse`."""
    unpitched_instruments: list[str]
    """Instruments never asked a key: a drum's key misleads a key filter more than none."""
    genres: dict[str, list[str]]
    """Genre names and the folder or tag words that mean them (docs/facts.md has the rules)."""
    instruments: dict[str, list[str]]
    """Instrument names and the words that mean them (docs/facts.md has the rules)."""


class ApiSettings(Section):
    """The search service (`timbre serve`)."""

    host: str
    """Interface to listen on; loopback exposes nothing until you choose to."""
    port: int = Field(ge=1, le=65535)
    """TCP port of the API and the page."""
    api_key: SecretStr | None
    """Key required (X-API-Key or Bearer) by writes. null = none: set one before exposing it."""
    require_key_for_reads: bool
    """Also require the key for searches and item reads."""
    library_roots: list[Path]
    """Folders whose files may be named by path and streamed, besides the data dir's roots."""
    allowed_hosts: list[str]
    """Host names answered besides loopback and api.host; any other gets 421 (DNS rebinding)."""
    cors_origins: list[str]
    """Origins allowed to call the API from a browser. Empty = off: the page is same-origin."""
    default_top_k: int = Field(ge=1)
    """Results per query when none is asked for."""
    max_top_k: int = Field(ge=1)
    """The most results a client may ask for."""
    max_offset: int = Field(ge=0)
    """Deepest result a client may page to: a query scores top_k + offset."""
    max_upload_bytes: int = Field(gt=0)
    """Largest upload (bytes, the whole multipart request), refused with 413 as it streams in."""
    max_upload_duration_s: float = Field(gt=0.0)
    """Longest uploaded reference (seconds)."""
    text_cache_size: int = Field(ge=0)
    """Text query vectors kept, so a repeated query skips the text tower."""
    snapshot_poll_s: float = Field(gt=0.0)
    """Seconds between checks for a newly published snapshot (hot swap)."""
    store_retry_s: float = Field(gt=0.0)
    """Seconds between reconnection attempts while the Qdrant server is unreachable."""
    max_batch: int = Field(ge=1)
    """Most texts in one batch request."""
    max_body_bytes: int = Field(gt=0)
    """Largest body other than an upload (bytes), refused with 413 as it streams in."""
    max_filter_values: int = Field(ge=1)
    """Most values in one filter field's list; bounds every store query."""
    text_batch_max: int = Field(ge=1)
    """Most uncached text queries answered by one text-tower call; a lone query never waits."""
    preload_audio: bool
    """Load the audio side (~0.9 GB) at start, not on the first query that needs it."""
    header_timeout_s: float = Field(gt=0.0)
    """Seconds a client has to send a whole request head; then 408 and the connection closes."""
    read_timeout_s: float = Field(gt=0.0)
    """Longest pause inside a request body (seconds)."""
    keep_alive_s: int = Field(ge=1)
    """Seconds an idle kept-alive connection stays open (uvicorn's default)."""
    max_concurrency: int = Field(ge=1)
    """Connections and requests in flight at once, beyond which 503 (the file limit is raised)."""
    log_repeat_window_s: float = Field(ge=0.0)
    """Identical log lines within this window (seconds) are written once, then counted."""


class LabelThresholds(Section):
    """The cosines at which one family's label vectors count."""

    category_min_cosine: float = Field(ge=-1.0, le=1.0)
    """A sample gets its best category only at this cosine and category_min_margin above the
    runner-up (uncalibrated: `timbre relabel --dry-run` shows a library's quantiles)."""
    category_min_margin: float = Field(ge=0.0, le=2.0)
    """Best minus runner-up category cosine: a near-tie is the model not knowing."""
    tag_min_cosine: float = Field(ge=-1.0, le=1.0)
    """A label becomes an auto tag at this cosine or above."""


class LabelsSettings(LabelThresholds):
    """Zero-shot ``category`` and ``auto_tags`` from the shared text–audio space; the
    thresholds are the clamp3 family's."""

    enabled: bool
    """Label every sample at ingest from its vector and the text vectors of a vocabulary."""
    vocabulary: Path | None
    """The vocabulary file (null = config/labels.yaml); apply a change with `timbre relabel`."""
    max_auto_tags: int = Field(ge=0)
    """Most auto tags per sample."""
    relabel_batch: int = Field(ge=1)
    """Points per page and payload update of `timbre relabel`."""
    families: dict[str, LabelThresholds]
    """Thresholds of families other than clamp3 (above): each space spreads cosines differently."""

    def thresholds(self, family: str) -> LabelThresholds:
        """The thresholds of ``family``: its own entry, else the clamp3 ones."""
        return self.families.get(family) or self


class DuplicatesSettings(Section):
    """Near-duplicate reports (``timbre duplicates``, ``GET /v1/duplicates``)."""

    min_cosine: float = Field(gt=0.0, le=1.0)
    """Samples are near-duplicates at this cosine (clamp3) when their durations agree."""
    family_min_cosine: dict[str, Annotated[float, Field(gt=0.0, le=1.0)]]
    """min_cosine of the other families."""
    duration_tolerance_s: float = Field(ge=0.0)
    """Durations agree within max(this, the ratio below x the longer one) seconds."""
    duration_tolerance_ratio: float = Field(ge=0.0, lt=1.0)
    """... or within this fraction of the longer: a 2-bar and a 4-bar cut never group."""
    neighbours: int = Field(ge=2)
    """Nearest neighbours read per sample; they join transitively, so 50 copies form one group."""
    batch: int = Field(ge=1)
    """Samples queried per batched request."""

    def min_cosine_of(self, family: str) -> float:
        """``min_cosine`` for vectors of ``family``."""
        return self.family_min_cosine.get(family, self.min_cosine)


class FacetsSettings(Section):
    """Facet counts (``GET /v1/facets``)."""

    default_limit: int = Field(ge=1)
    """Values per field when the request names no limit."""
    max_limit: int = Field(ge=1)
    """Most values a request may ask for per field."""


class MediaSettings(Section):
    """What the page needs besides search: browser-playable renditions (waveform peaks)."""

    rendition_cache_bytes: int = Field(ge=0)
    """Disk kept for WAV renditions of files browsers cannot play (bytes), oldest out first."""


class FitSettings(Section):
    """How samples fit a project's tempo and key (a search's ``context``)."""

    tempo_tolerance_pct: float = Field(ge=0.0, le=100.0)
    """Most time-stretch (percent) a sample may need and still fit, when a request names none:
    about where stretching starts to be heard on drums (smeared transients, drifting groove)."""


class McpSettings(Section):
    """The MCP server over stdio (`timbre mcp`)."""

    store_idle_s: float = Field(gt=0.0)
    """Seconds `timbre mcp` keeps the store open after a call, so a conversation shares one."""
    store_yield_s: float = Field(gt=0.0)
    """Seconds a process refused the store by `timbre mcp` waits for it after asking."""
    store_poll_s: float = Field(gt=0.0)
    """Seconds between `timbre mcp`'s looks for a process asking for the store or a service."""
    service_timeout_s: float = Field(gt=0.0)
    """Seconds `timbre mcp` waits for a service's answer (it may still load its text model)."""


class WatchSettings(Section):
    """Watched folders (``timbre serve``, ``timbre watch``)."""

    enabled: bool
    """Turn every change under the roots into an ingest job (`timbre serve`, `timbre watch`)."""
    roots: list[Path] | None
    """Folders to watch. null = api.library_roots and the roots this data dir indexes."""
    debounce_s: float = Field(ge=0.0)
    """Quiet time after a path's last event before it is looked at (seconds)."""
    settle_s: float = Field(ge=0.0)
    """Size and mtime must hold this long before a file is read (seconds): no half copies."""
    max_batch_files: int = Field(ge=1)
    """Most changed files per job: each batch is searchable soon, no job holds the CPU long."""
    tick_s: float = Field(gt=0.0)
    """How often the watcher looks at its roots, pending files and running job (seconds)."""
    reconcile_on_start: bool
    """At start (and when a root returns), a pruning job per root catches unwatched changes."""


class Settings(BaseSettings):
    """Every setting of a Timbre process."""

    model_config = SettingsConfigDict(
        env_prefix="TIMBRE_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
        use_attribute_docstrings=True,
    )

    data_dir: Path
    """Folder of everything Timbre writes: the embedded store, snapshots, caches, reports.
    null = the per-user data folder (e.g. ~/.local/share/timbre), the same from any folder."""
    models: ModelsSettings
    audio: AudioSettings
    qdrant: QdrantSettings
    disk: DiskSettings
    snapshot: SnapshotSettings
    ingest: IngestSettings
    api: ApiSettings
    labels: LabelsSettings
    duplicates: DuplicatesSettings
    facets: FacetsSettings
    media: MediaSettings
    fit: FitSettings
    mcp: McpSettings
    watch: WatchSettings

    @field_validator("data_dir")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser()

    @model_validator(mode="before")
    @classmethod
    def _resolve_nulls(cls, data: Any) -> Any:
        """``data_dir: null`` is the per-user data folder; ``models.export_dir: null`` is the
        data dir's ``cache/onnx``."""
        if not isinstance(data, dict):
            return data
        if data.get("data_dir") in (None, ""):
            data = {**data, "data_dir": user_data_dir()}
        models = data.get("models")
        if isinstance(models, dict) and models.get("export_dir") is None:
            export_dir = Path(str(data["data_dir"])).expanduser() / "cache" / "onnx"
            data = {**data, "models": {**models, "export_dir": export_dir}}
        return data

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # First wins: explicit arguments, then the environment, then the YAML files.
        overlay = os.environ.get(CONFIG_ENV)
        files = [DEFAULT_CONFIG_FILE, *([Path(overlay)] if overlay else [])]
        for file in files:
            if not file.is_file():
                raise ConfigError(f"cannot read the settings file {file}: no such file")
        try:
            yaml_files = YamlConfigSettingsSource(settings_cls, files, deep_merge=True)
        except OSError as exc:
            raise ConfigError(
                f"cannot read the settings file {exc.filename}: {exc.strerror}"
            ) from exc
        except yaml.YAMLError as exc:
            raise ConfigError(f"a settings file is not valid YAML: {exc}") from exc
        except AttributeError as exc:  # the source found no mapping at the top
            names = " or ".join(map(str, files))
            raise ConfigError(f"a settings file ({names}) is not a YAML mapping: {exc}") from exc
        return init_settings, env_settings, yaml_files


def user_data_dir() -> Path:
    """The per-user data folder: where every command looks when ``data_dir`` is not set."""
    import platformdirs

    return Path(platformdirs.user_data_dir("timbre", appauthor=False))


def load_settings(**overrides: Any) -> Settings:
    """Build the Settings of this process (ConfigError names what is wrong). ``overrides``
    win and may be partial (``models={"bundle": "/m"}``); a bundle ``timbre quickstart``
    recorded in the data dir is used when none is configured."""
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"invalid settings: {problems}") from exc
    if settings.models.bundle is None:
        from timbre.bundle_record import recorded_bundle

        bundle = recorded_bundle(settings.data_dir)
        if bundle is not None:
            models = settings.models.model_copy(update={"bundle": bundle})
            settings = settings.model_copy(update={"models": models})
    return settings
