"""One typed Settings object for every Timbre process.

Precedence, lowest first: ``config/default.yaml`` (where every default lives, once, with its
unit and reason) < an optional overlay YAML named by ``TIMBRE_CONFIG`` < environment variables
``TIMBRE_<FIELD>`` with ``__`` between nested names (``TIMBRE_MODELS__BUNDLE=/models``) <
explicit arguments passed to :func:`load_settings`.

The models here carry no Python defaults on purpose: a value missing from the YAML is an error
at start-up, not a silently different default in code.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
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
)

from timbre.errors import ConfigError

DEFAULT_CONFIG_FILE = Path(__file__).resolve().parent.parent / "config" / "default.yaml"
"""The YAML defaults shipped with the source tree (also copied into the container image)."""

CONFIG_ENV = "TIMBRE_CONFIG"
"""Names an overlay YAML file read on top of the defaults."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HubModel(_Section):
    """A model repository on the Hugging Face hub, at a pinned revision."""

    repo: str
    revision: str = Field(min_length=1)


class Clamp3Hub(HubModel):
    """The CLaMP3 repository and the one checkpoint file Timbre uses from it."""

    filename: str


class PerDevice(_Section):
    """One count per kind of device: what fits and pays off differs by an order of magnitude."""

    cpu: int = Field(ge=1)
    cuda: int = Field(ge=1)

    @model_validator(mode="before")
    @classmethod
    def _one_for_both(cls, value: Any) -> Any:
        """A single number (``TIMBRE_INGEST__BATCH_FILES=4``) sets both devices."""
        if isinstance(value, int | str) and not isinstance(value, bool):
            return {"cpu": value, "cuda": value}
        return value

    def on(self, device_type: str) -> int:
        """The value for a torch device type (``cpu`` or ``cuda``)."""
        return self.cuda if device_type == "cuda" else self.cpu


class ClapHub(HubModel):
    """The LAION-CLAP checkpoint (transformers' ``ClapModel`` layout) and its fixed policies."""

    short_clip: Literal["repeatpad", "pad"]
    long_clip: Literal["mean", "first"]
    max_windows: int = Field(ge=1)
    batch_windows: PerDevice
    batch_texts: PerDevice


class ModelsSettings(_Section):
    """Where the weights come from and how they run."""

    family: Literal["clamp3", "clap"]
    bundle: Path | None
    hub_connect_timeout_s: float = Field(gt=0.0)
    mert: HubModel
    clamp3: Clamp3Hub
    xlmr: HubModel
    clap: ClapHub
    device: Literal["auto", "cpu", "cuda"]
    threads: int = Field(ge=0)
    mert_batch_windows: PerDevice
    mert_streams: Literal["auto"] | Annotated[int, Field(ge=1)]
    """MERT passes in flight at once on ONNX Runtime (see config/default.yaml)."""
    tower_batch_segments: PerDevice
    runtime: Literal["auto", "torch", "onnxruntime"]
    export_dir: Path | None
    """Resolved by :class:`Settings`: null in the YAML means ``<data_dir>/cache/onnx``."""
    onnx_min_cosine: float = Field(gt=0.0, le=1.0)


class AudioSettings(_Section):
    """Limits on the audio Timbre accepts."""

    max_duration_s: float = Field(gt=0.0)
    max_file_bytes: int = Field(gt=0)


class QdrantSettings(_Section):
    """Where vectors and payloads live: the embedded Qdrant Edge shard or a Qdrant server."""

    url: str | None
    api_key: SecretStr | None
    prefer_grpc: bool
    collection: str = Field(pattern=r"^[A-Za-z0-9_]+$")
    timeout_s: int = Field(ge=1)
    max_attempts: int = Field(ge=1)
    retry_backoff_s: float = Field(ge=0.0)
    upsert_batch: int = Field(ge=1)
    scroll_batch: int = Field(ge=1)
    keep_generations: int = Field(ge=1)


class DiskSettings(_Section):
    """Free space kept on the data dir's file system (see :mod:`timbre.diskspace`)."""

    min_free_bytes: int = Field(ge=0)


class SnapshotSettings(_Section):
    """The FAISS exact snapshot that serves unfiltered queries."""

    keep: int = Field(ge=1)
    mmap_min_bytes: int = Field(ge=0)
    verify_checksums: bool
    reverify_unchanged: bool
    quantised_min_vectors: int = Field(ge=0)
    scan_threads: int = Field(ge=0)
    filtered_min_points: int = Field(ge=0)


class IngestSettings(_Section):
    """Defaults of ``timbre ingest`` and the vocabularies that read a library's names."""

    profile: Literal["sequential", "parallel"]
    workers: int = Field(ge=0)
    batch_files: PerDevice
    batch_audio_s: float = Field(gt=0.0)
    progress_interval_s: float = Field(gt=0.0)
    snapshot: bool
    reanalyse_batch: int = Field(ge=1)
    unpitched_instruments: list[str]
    genres: dict[str, list[str]]
    instruments: dict[str, list[str]]


class ApiSettings(_Section):
    """The search service (`timbre serve`)."""

    host: str
    port: int = Field(ge=1, le=65535)
    api_key: SecretStr | None
    require_key_for_reads: bool
    library_roots: list[Path]
    allowed_hosts: list[str]
    cors_origins: list[str]
    default_top_k: int = Field(ge=1)
    max_top_k: int = Field(ge=1)
    max_offset: int = Field(ge=0)
    max_upload_bytes: int = Field(gt=0)
    max_upload_duration_s: float = Field(gt=0.0)
    text_cache_size: int = Field(ge=0)
    snapshot_poll_s: float = Field(gt=0.0)
    store_retry_s: float = Field(gt=0.0)
    max_batch: int = Field(ge=1)
    max_body_bytes: int = Field(gt=0)
    max_filter_values: int = Field(ge=1)
    text_batch_max: int = Field(ge=1)
    preload_audio: bool
    header_timeout_s: float = Field(gt=0.0)
    read_timeout_s: float = Field(gt=0.0)
    keep_alive_s: int = Field(ge=1)
    max_concurrency: int = Field(ge=1)
    log_repeat_window_s: float = Field(ge=0.0)


class LabelThresholds(_Section):
    """The cosines at which one family's label vectors count (see config/default.yaml)."""

    category_min_cosine: float = Field(ge=-1.0, le=1.0)
    category_min_margin: float = Field(ge=0.0, le=2.0)
    tag_min_cosine: float = Field(ge=-1.0, le=1.0)


class LabelsSettings(_Section):
    """Zero-shot ``category`` and ``auto_tags`` from the shared text–audio space."""

    enabled: bool
    vocabulary: Path | None
    category_min_cosine: float = Field(ge=-1.0, le=1.0)
    category_min_margin: float = Field(ge=0.0, le=2.0)
    tag_min_cosine: float = Field(ge=-1.0, le=1.0)
    max_auto_tags: int = Field(ge=0)
    relabel_batch: int = Field(ge=1)
    families: dict[str, LabelThresholds]
    """The thresholds of each family other than clamp3 (whose are the fields above)."""

    def thresholds(self, family: str) -> LabelThresholds:
        """The thresholds of ``family``: its own entry, else the clamp3 values above."""
        return self.families.get(family) or LabelThresholds(
            category_min_cosine=self.category_min_cosine,
            category_min_margin=self.category_min_margin,
            tag_min_cosine=self.tag_min_cosine,
        )


class DuplicatesSettings(_Section):
    """Near-duplicate reports (``timbre duplicates``, ``GET /v1/duplicates``)."""

    min_cosine: float = Field(gt=0.0, le=1.0)
    """For the clamp3 family; the others' are in :attr:`family_min_cosine`."""
    family_min_cosine: dict[str, Annotated[float, Field(gt=0.0, le=1.0)]]
    duration_tolerance_s: float = Field(ge=0.0)
    duration_tolerance_ratio: float = Field(ge=0.0, lt=1.0)
    neighbours: int = Field(ge=2)
    batch: int = Field(ge=1)

    def min_cosine_of(self, family: str) -> float:
        """``min_cosine`` for vectors of ``family``."""
        return self.family_min_cosine.get(family, self.min_cosine)


class FacetsSettings(_Section):
    """Facet counts (``GET /v1/facets``)."""

    default_limit: int = Field(ge=1)
    max_limit: int = Field(ge=1)


class MediaSettings(_Section):
    """What the page needs besides search: browser-playable renditions (waveform peaks)."""

    rendition_cache_bytes: int = Field(ge=0)


class McpSettings(_Section):
    """The MCP server over stdio (`timbre mcp`)."""

    store_idle_s: float = Field(gt=0.0)
    store_yield_s: float = Field(gt=0.0)
    store_poll_s: float = Field(gt=0.0)
    service_timeout_s: float = Field(gt=0.0)


class WatchSettings(_Section):
    """Watched folders (``timbre serve``, ``timbre watch``)."""

    enabled: bool
    roots: list[Path] | None
    debounce_s: float = Field(ge=0.0)
    settle_s: float = Field(ge=0.0)
    max_batch_files: int = Field(ge=1)
    tick_s: float = Field(gt=0.0)
    reconcile_on_start: bool


class Settings(BaseSettings):
    """Every setting of a Timbre process (see ``config/default.yaml`` for units and reasons)."""

    model_config = SettingsConfigDict(
        env_prefix="TIMBRE_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    data_dir: Path
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
    mcp: McpSettings
    watch: WatchSettings

    @field_validator("data_dir")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser()

    @model_validator(mode="before")
    @classmethod
    def _export_dir_in_data_dir(cls, data: Any) -> Any:
        """``data_dir: null`` means the per-user data folder; ``models.export_dir: null``
        means the data dir's ``cache/onnx``."""
        if not isinstance(data, dict):
            return data
        if data.get("data_dir") in (None, ""):
            data = {**data, "data_dir": user_data_dir()}
        models, data_dir = data.get("models"), data.get("data_dir")
        if isinstance(models, dict) and models.get("export_dir") is None and data_dir is not None:
            export_dir = Path(str(data_dir)).expanduser() / "cache" / "onnx"
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
        return (init_settings, env_settings, _YamlSource(settings_cls))


def user_data_dir() -> Path:
    """The per-user data folder: where every command looks when ``data_dir`` is not set."""
    import platformdirs

    return Path(platformdirs.user_data_dir("timbre", appauthor=False))


class _YamlSource(PydanticBaseSettingsSource):
    """Reads the default YAML and the optional overlay named by ``TIMBRE_CONFIG``."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        raise NotImplementedError  # __call__ below returns the whole mapping at once

    def __call__(self) -> dict[str, Any]:
        merged = _read_yaml(DEFAULT_CONFIG_FILE)
        overlay = os.environ.get(CONFIG_ENV)
        if overlay:
            merged = _deep_merge(merged, _read_yaml(Path(overlay)))
        return merged


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read the settings file {path}: {exc.strerror}") from exc
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of settings, not {type(data).__name__}")
    return data


def _deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def load_settings(**overrides: Any) -> Settings:
    """Build the Settings of this process.

    Args:
        **overrides: explicit values, the highest-precedence source; nested sections may be
            given as partial mappings (``models={"bundle": "/m"}``).

    A data dir where ``timbre quickstart`` recorded a model bundle (see
    :mod:`timbre.bundle_record`) uses it whenever no bundle is configured.

    Raises:
        ConfigError: a settings file is unreadable or a value is invalid; the message names
            the field and the reason.
    """
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
