"""Text -> token ids as the reference prepares them (the ``tokenizers`` library only, no torch)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer

from timbre.errors import ModelFilesError

TEXT_SEGMENT_TOKENS = 128
"""Tokens per text segment (CLaMP3 ``MAX_TEXT_LENGTH``; not recorded in any model file)."""


class TextTokens:
    """The XLM-R tokenizer with the reference's line handling.

    Attributes:
        tokenizer: the ``tokenizers`` tokenizer (no truncation, no padding).
        separator: the token that joins lines (``</s>``).
        pad_id: the id that fills padded positions (masked out, so any id gives the same
            vectors; the reference uses 1).
    """

    def __init__(self, tokenizer: Tokenizer, *, separator: str, pad_id: int) -> None:
        self.tokenizer = tokenizer
        self.separator = separator
        self.pad_id = pad_id

    @classmethod
    def load(cls, xlmr_dir: Path, pad_id: int) -> TextTokens:
        """Read ``tokenizer.json`` and the separator from ``tokenizer_config.json``.

        Raises:
            ModelFilesError: a file is unreadable or not a tokenizers file.
        """
        return cls(_load_tokenizer(xlmr_dir), separator=_separator(xlmr_dir), pad_id=pad_id)

    def token_ids(self, text: str) -> list[int]:
        """Token ids of a text prepared as the reference does.

        Lines are de-duplicated and empty ones dropped, then joined with the separator token
        (``</s>``), then tokenised with ``<s> ... </s>`` and no truncation. The reference
        de-duplicates through a Python ``set``, whose order changes from process to process
        for multi-line text; Timbre keeps the first occurrence order so a query always gives
        the same vector (single-line text is unaffected).
        """
        lines = [line for line in dict.fromkeys(text.split("\n")) if line]
        ids = self.tokenizer.encode(self.separator.join(lines)).ids
        return list(ids)


def read_pad_id(xlmr_dir: Path) -> int:
    """The text model's ``pad_token_id`` from its ``config.json`` (1, as XLM-R, if absent)."""
    path = xlmr_dir / "config.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelFilesError(f"cannot read {path}: {exc}") from exc
    pad = data.get("pad_token_id") if isinstance(data, dict) else None
    return int(pad) if pad is not None else 1


def _load_tokenizer(xlmr_dir: Path) -> Tokenizer:
    path = xlmr_dir / "tokenizer.json"
    try:
        tokenizer = Tokenizer.from_file(str(path))
    except Exception as exc:  # the tokenizers library raises bare Exceptions
        raise ModelFilesError(f"{path} is not a tokenizers file: {exc}") from exc
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


def _separator(xlmr_dir: Path) -> str:
    path = xlmr_dir / "tokenizer_config.json"
    data: dict[str, Any] = {}
    if path.is_file():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ModelFilesError(f"cannot read {path}: {exc}") from exc
    token = data.get("sep_token", "</s>")
    if isinstance(token, dict):
        token = token.get("content", "</s>")
    return str(token)
