"""The collection schema, read from ``qdrant/collection.yaml`` (the one place it is written).

Also the naming of versioned collections: ``<base>[-<family>]-<key>-<generation>``, where
``key`` hashes what stored vectors depend on (audio key, schema version, distance), so a
model, pipeline or schema change builds a new collection beside the live one (clamp3, the
first family, is not named: its collections keep their names from before families).
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from timbre.embedding.info import DEFAULT_FAMILY, ModelInfo
from timbre.errors import ConfigError

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "qdrant" / "collection.yaml"
"""The schema shipped with the source tree (also copied into the container image)."""

KEY_HASH_CHARS = 12
"""Hex characters of the model/schema key in a collection name (48 bits: ample for the few
builds a deployment keeps)."""

IndexType = Literal["keyword", "integer", "float", "bool", "datetime", "uuid"]
# Only metrics that rank normalised vectors like FAISS inner product: the snapshot must agree.
Distance = Literal["Cosine", "Dot"]


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class VectorsSchema(_Part):
    distance: Distance
    datatype: Literal["float32"]
    embedded_on_disk: bool


class HnswSchema(_Part):
    m: int = Field(ge=0)
    ef_construct: int = Field(ge=4)
    full_scan_threshold_kb: int = Field(ge=0)
    payload_m: int = Field(ge=0)


class OptimizersSchema(_Part):
    server_indexing_threshold_kb: int = Field(ge=0)
    embedded_indexing_threshold_kb: int = Field(ge=0)


class ClusterSchema(_Part):
    shard_number: int = Field(ge=1)
    replication_factor: int = Field(ge=1)
    write_consistency_factor: int = Field(ge=1)


class PayloadSchema(_Part):
    on_disk: bool
    embedded_indexes_on_disk: bool


class CollectionSchema(_Part):
    """Everything about a Timbre collection except its vector size (that comes from the models)."""

    schema_version: int = Field(ge=1)
    vectors: VectorsSchema
    hnsw: HnswSchema
    optimizers: OptimizersSchema
    cluster: ClusterSchema
    payload: PayloadSchema
    indexes: dict[str, IndexType]

    @property
    def distance(self) -> Distance:
        return self.vectors.distance

    def collection_key(self, info: ModelInfo) -> str:
        """Short stable hash of what stored vectors depend on (models, pipeline, schema)."""
        material = {
            "audio": info.audio_key(),
            "schema_version": self.schema_version,
            "distance": self.distance,
        }
        digest = hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()
        return digest[:KEY_HASH_CHARS]


def load_schema(path: Path = SCHEMA_FILE) -> CollectionSchema:
    """Read and validate the collection schema; ConfigError if missing, not YAML or invalid."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read the collection schema {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
    try:
        return CollectionSchema.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"invalid collection schema {path}: {problems}") from exc


def generation_name(base: str, key: str, generation: int, family: str = DEFAULT_FAMILY) -> str:
    """Name of one versioned collection, e.g. ``timbre-3fa9c2d1e0b4-002`` (clamp3) or
    ``timbre-clap-3fa9c2d1e0b4-002``."""
    named = "" if family == DEFAULT_FAMILY else f"{family}-"
    return f"{base}-{named}{key}-{generation:03d}"


def parse_generation_name(base: str, name: str) -> tuple[str, int] | None:
    """``(key, generation)`` of a versioned collection of ``base``, or None if it is not one."""
    match = re.fullmatch(
        rf"{re.escape(base)}-(?:[a-z][a-z0-9_]*-)?([0-9a-f]{{{KEY_HASH_CHARS}}})-(\d{{3,}})", name
    )
    if match is None:
        return None
    return match.group(1), int(match.group(2))
