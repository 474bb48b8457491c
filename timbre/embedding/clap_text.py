"""The clap family's text input: RoBERTa's byte-level BPE, truncated at the position limit.

The tokenizer is the checkpoint's own ``tokenizer.json`` (run by ``tokenizers``, no torch):
``<s> ... </s>``, exactly what transformers' ``ClapProcessor`` produces. The reference does
not truncate, and its text encoder fails past its position table; Timbre keeps the first
``limit - 1`` tokens and the closing ``</s>``, where ``limit`` is the position table's size
less RoBERTa's padding offset (514 - 2 = 512 tokens for the LAION checkpoints). A query that
long is rare; a text within the limit is encoded exactly as the reference encodes it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from timbre.errors import ModelFilesError


@dataclass(frozen=True)
class ClapTokens:
    tokenizer: Tokenizer
    limit: int
    pad_id: int
    eos_id: int

    @classmethod
    def load(cls, folder: Path) -> ClapTokens:
        """Raises: ModelFilesError: a file is missing or malformed."""
        try:
            tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
            text = json.loads((folder / "config.json").read_text(encoding="utf-8"))["text_config"]
            pad_id = int(text.get("pad_token_id", 1))
            limit = int(text["max_position_embeddings"]) - pad_id - 1
        except Exception as exc:  # tokenizers raises a bare Exception on a malformed file
            raise ModelFilesError(f"the CLAP tokenizer or config in {folder}: {exc}") from exc
        eos = tokenizer.token_to_id("</s>")
        if eos is None:
            raise ModelFilesError(f"{folder / 'tokenizer.json'} has no </s> token")
        return cls(tokenizer, limit, pad_id, eos)

    def token_ids(self, text: str) -> list[int]:
        ids = self.tokenizer.encode(text).ids
        if len(ids) > self.limit:
            ids = [*ids[: self.limit - 1], self.eos_id]
        return ids

    def batch(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """``input_ids`` and ``attention_mask`` ``[n, longest]`` (int64), right-padded."""
        rows = [self.token_ids(t) for t in texts]
        width = max(len(r) for r in rows)
        ids = np.full((len(rows), width), self.pad_id, np.int64)
        mask = np.zeros((len(rows), width), np.int64)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = row
            mask[i, : len(row)] = 1
        return ids, mask
