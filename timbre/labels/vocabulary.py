"""The label vocabulary file (``config/labels.yaml``): categories and character words."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from timbre.errors import ConfigError

VOCABULARY_FILE = Path(__file__).resolve().parents[2] / "config" / "labels.yaml"
"""The vocabulary shipped with the source tree (``labels.vocabulary: null`` uses it)."""

LabelKind = Literal["category", "character"]


@dataclass(frozen=True)
class Label:
    """One label: its name, whether it is a category or a character word, and its prompts.

    Attributes:
        name: what the payload says (``kick``, ``warm``).
        kind: ``category`` (at most one per sample) or ``character`` (auto tags only).
        prompts: phrasings embedded with the text tower and averaged.
        instrument: for a category, the ``instrument`` it stands for (None for loop kinds...).
    """

    name: str
    kind: LabelKind
    prompts: tuple[str, ...]
    instrument: str | None = None


class _Category(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prompts: list[str] = Field(min_length=1)
    instrument: str | None = None


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int = Field(ge=1)
    categories: dict[str, _Category] = Field(min_length=2)
    character: dict[str, list[str]] = Field(default_factory=dict)


@dataclass(frozen=True)
class Vocabulary:
    """Every label, categories first, in file order."""

    labels: tuple[Label, ...]
    source: str

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(label.name for label in self.labels)

    def prompt_hash(self) -> str:
        """SHA-256 of the labels and their prompts (what the label vectors depend on)."""
        material = [[lb.name, lb.kind, list(lb.prompts)] for lb in self.labels]
        return hashlib.sha256(json.dumps(material, ensure_ascii=False).encode()).hexdigest()

    def content_hash(self) -> str:
        """SHA-256 of everything in the vocabulary, instrument mapping included."""
        material = [[lb.name, lb.kind, list(lb.prompts), lb.instrument] for lb in self.labels]
        return hashlib.sha256(json.dumps(material, ensure_ascii=False).encode()).hexdigest()


def load_vocabulary(path: Path | None = None) -> Vocabulary:
    """Read and check a vocabulary file (the shipped one if ``path`` is None).

    Raises:
        ConfigError: the file is missing or not YAML, a field is wrong, a prompt is empty, or
            a name is used twice (names are what payloads say, so they must be unique).
    """
    path = path or VOCABULARY_FILE
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read the label vocabulary {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
    try:
        parsed = _File.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"invalid label vocabulary {path}: {problems}") from exc
    labels = [
        Label(name.strip(), "category", tuple(c.prompts), c.instrument)
        for name, c in parsed.categories.items()
    ]
    labels += [
        Label(name.strip(), "character", tuple(prompts))
        for name, prompts in parsed.character.items()
    ]
    seen: set[str] = set()
    for label in labels:
        if not label.name:
            raise ConfigError(f"{path}: a label has an empty name")
        if label.name.casefold() in seen:
            raise ConfigError(f"{path}: the label {label.name!r} is defined twice")
        seen.add(label.name.casefold())
        if not label.prompts or any(not p.strip() for p in label.prompts):
            raise ConfigError(f"{path}: the label {label.name!r} has an empty prompt")
    return Vocabulary(tuple(labels), str(path))
