"""Filter columns: every indexed payload field, exported as the store holds it, evaluated here.

One column per ``keyword`` or ``float`` field of ``qdrant/collection.yaml`` (derived fields such
as ``dirs`` included). A snapshot evaluates :meth:`~timbre.store.filters.SearchFilter.conditions`
into a row mask with Qdrant's semantics: AND across conditions, any-of within one and within a
list value; a missing or null value never matches; keywords match exactly.

Layout under ``columns/`` (all ``.npy``), like Qdrant's own payload indexes:

- keyword ``F``: ``F.vocab.npy`` (uint8: the distinct values, UTF-8, sorted by bytes,
  concatenated), ``F.vocab_offsets.npy`` (int64 ``[V + 1]``), and the postings of each value
  ``F.post_offsets.npy`` (int64 ``[V + 1]``) into ``F.post_rows.npy`` (int32 rows, ascending).
- float ``F``: ``F.values.npy`` (float64, ascending) and ``F.rows.npy`` (int32, the row of each).

A mask costs O(matching rows) per condition, plus one pass over the mask per condition.
"""

from __future__ import annotations

import bisect
import math
import re
from array import array
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from timbre.errors import SnapshotError
from timbre.store.filters import Condition, MatchAny, Range
from timbre.store.snapshot.arrays import load_array
from timbre.store.snapshot.layout import COLUMNS_DIR

KEYWORD = "keyword"
FLOAT = "float"
COLUMN_TYPES = (KEYWORD, FLOAT)
"""Index types a snapshot evaluates; conditions on other fields are left to Qdrant."""

KEYWORD_PARTS = ("vocab", "vocab_offsets", "post_offsets", "post_rows")
FLOAT_PARTS = ("values", "rows")
_FIELD = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
MAX_ROWS = 2**31 - 1
"""Rows are stored as int32 (half the bytes of int64 at several postings per row)."""


def column_fields(indexes: Mapping[str, str]) -> dict[str, str]:
    """The indexed fields that get a column (evaluable type, file-safe name)."""
    return {f: t for f, t in indexes.items() if t in COLUMN_TYPES and _FIELD.fullmatch(f)}


def column_files(field: str, kind: str) -> list[str]:
    """File names (relative to the snapshot directory) of one field's column."""
    parts = KEYWORD_PARTS if kind == KEYWORD else FLOAT_PARTS
    return [f"{COLUMNS_DIR}/{field}.{part}.npy" for part in parts]


def _values(raw: Any) -> Iterable[Any]:
    if raw is None:
        return ()
    return raw if isinstance(raw, list | tuple) else (raw,)


class _KeywordColumn:
    def __init__(self) -> None:
        self.codes: dict[str, int] = {}
        self.value_codes = array("i")
        self.rows = array("i")

    def add(self, first_row: int, raws: Sequence[Any]) -> None:
        # The export's inner loop (several values per point at a million points): locals only.
        codes, add_code, add_row = self.codes, self.value_codes.append, self.rows.append
        for row, raw in enumerate(raws, first_row):
            for value in (raw,) if isinstance(raw, str) else _values(raw):
                if isinstance(value, str):
                    code = codes.get(value)
                    if code is None:
                        code = codes[value] = len(codes)
                    add_code(code)
                    add_row(row)

    def arrays(self) -> dict[str, np.ndarray]:
        words = [w.encode("utf-8") for w in self.codes]
        order = sorted(range(len(words)), key=words.__getitem__)
        rank = np.empty(len(words), dtype=np.int64)
        rank[order] = np.arange(len(words))
        codes = rank[np.frombuffer(self.value_codes, dtype=np.int32)] if words else rank[:0]
        by_value = np.argsort(codes, kind="stable")  # rows stay ascending within a value
        sorted_words = [words[i] for i in order]
        return {
            "vocab": np.frombuffer(b"".join(sorted_words), dtype=np.uint8),
            "vocab_offsets": np.concatenate(
                [[0], np.cumsum([len(w) for w in sorted_words])]
            ).astype(np.int64),
            "post_offsets": np.concatenate(
                [[0], np.cumsum(np.bincount(codes, minlength=len(words)))]
            ).astype(np.int64),
            "post_rows": np.frombuffer(self.rows, dtype=np.int32)[by_value],
        }


class _FloatColumn:
    def __init__(self) -> None:
        self.values = array("d")
        self.rows = array("i")

    def add(self, first_row: int, raws: Sequence[Any]) -> None:
        for row, raw in enumerate(raws, first_row):
            for value in _values(raw):
                # Numbers only (a bool is not one), finite: what Qdrant's float index holds.
                number = isinstance(value, int | float) and not isinstance(value, bool)
                if number and math.isfinite(value):
                    self.values.append(float(value))
                    self.rows.append(row)

    def arrays(self) -> dict[str, np.ndarray]:
        values = np.frombuffer(self.values, dtype=np.float64)
        order = np.argsort(values, kind="stable")
        return {"values": values[order], "rows": np.frombuffer(self.rows, dtype=np.int32)[order]}


class ColumnWriter:
    """Collects the columns of an export, page by page, and writes them at the end."""

    def __init__(self, directory: Path, indexes: Mapping[str, str]) -> None:
        self.directory = directory
        self.fields = column_fields(indexes)
        self._columns = {
            f: _KeywordColumn() if t == KEYWORD else _FloatColumn() for f, t in self.fields.items()
        }

    def add(self, first_row: int, payloads: Sequence[Mapping[str, Any]]) -> None:
        if first_row + len(payloads) > MAX_ROWS:
            raise SnapshotError(f"a snapshot holds at most {MAX_ROWS} rows")
        for field, column in self._columns.items():
            column.add(first_row, [payload.get(field) for payload in payloads])

    def finish(self) -> list[str]:
        """Write every column; returns the file names written (relative to the directory)."""
        (self.directory / COLUMNS_DIR).mkdir(exist_ok=True)
        written = []
        for field, column in self._columns.items():
            for name, values in column.arrays().items():
                relative = f"{COLUMNS_DIR}/{field}.{name}.npy"
                np.save(self.directory / relative, values)
                written.append(relative)
        return written


class Columns:
    """The loaded filter columns (``fields``: field -> type) of a snapshot of ``rows`` rows;
    turns conditions into row masks."""

    def __init__(
        self, directory: Path, fields: Mapping[str, str], rows: int, *, mmapped: bool
    ) -> None:
        self.fields = dict(fields)
        self.rows = rows
        self._arrays: dict[str, dict[str, np.ndarray]] = {}
        for field, kind in self.fields.items():
            parts = KEYWORD_PARTS if kind == KEYWORD else FLOAT_PARTS
            self._arrays[field] = {
                part: load_array(directory / f"{COLUMNS_DIR}/{field}.{part}.npy", mmapped=mmapped)
                for part in parts
            }
            self._check(field, kind)

    def _check(self, field: str, kind: str) -> None:
        a = self._arrays[field]
        if kind == KEYWORD:
            ok = (
                a["vocab_offsets"].ndim == 1
                and len(a["vocab_offsets"]) == len(a["post_offsets"])
                and int(a["vocab_offsets"][-1]) == len(a["vocab"])
                and int(a["post_offsets"][-1]) == len(a["post_rows"])
            )
        else:
            ok = a["values"].shape == a["rows"].shape and a["values"].ndim == 1
        if not ok:
            raise SnapshotError(f"the {field} column's files disagree with each other")

    def mask(self, conditions: Sequence[Condition]) -> np.ndarray | None:
        """Rows matching every condition (bool ``[rows]``); None unless each names a column of
        its type."""
        for c in conditions:
            if self.fields.get(c.field) != (KEYWORD if isinstance(c, MatchAny) else FLOAT):
                return None
        result = np.ones(self.rows, dtype=bool)
        for condition in conditions:
            result &= self._condition_mask(condition)
        return result

    def _condition_mask(self, condition: Condition) -> np.ndarray:
        out = np.zeros(self.rows, dtype=bool)
        a = self._arrays[condition.field]
        if isinstance(condition, MatchAny):
            offsets = a["post_offsets"]
            for value in condition.values:
                code = self._code(a, value)
                if code is not None:
                    out[a["post_rows"][offsets[code] : offsets[code + 1]]] = True
        else:
            lo, hi = _range_slice(a["values"], condition)
            out[a["rows"][lo:hi]] = True
        return out

    @staticmethod
    def _code(a: Mapping[str, np.ndarray], value: str) -> int | None:
        """Position of ``value`` in the sorted vocabulary (binary search over the bytes)."""
        key = value.encode("utf-8")
        vocab, offsets = a["vocab"], a["vocab_offsets"]

        def word(i: int) -> bytes:
            return vocab[int(offsets[i]) : int(offsets[i + 1])].tobytes()

        n = len(offsets) - 1
        at = bisect.bisect_left(range(n), key, key=word)
        return at if at < n and word(at) == key else None


def _range_slice(values: np.ndarray, condition: Range) -> tuple[int, int]:
    """``[lo, hi)`` of the sorted ``values`` inside the condition's bounds (``gte``/``lte``
    inclusive, ``gt``/``lt`` exclusive)."""
    lo, hi = 0, len(values)
    if condition.gte is not None:
        lo = max(lo, int(np.searchsorted(values, condition.gte, "left")))
    if condition.gt is not None:
        lo = max(lo, int(np.searchsorted(values, condition.gt, "right")))
    if condition.lte is not None:
        hi = min(hi, int(np.searchsorted(values, condition.lte, "right")))
    if condition.lt is not None:
        hi = min(hi, int(np.searchsorted(values, condition.lt, "left")))
    return lo, max(lo, hi)
