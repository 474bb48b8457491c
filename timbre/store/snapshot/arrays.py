"""``.npy`` files written a page at a time, and read back memory-mapped or into RAM.

An export learns its row count only at the end, and holding every vector to ``np.save`` them
would cost gigabytes, so rows are appended behind a fixed-size header filled in last.
"""

from __future__ import annotations

import os
import struct
import weakref
from pathlib import Path
from typing import IO, Literal

import numpy as np

from timbre.errors import SnapshotError

HEADER_BYTES = 128
"""Room for the ``.npy`` 1.0 header (magic, version, length, dict padded with spaces)."""


class NpyAppender:
    """A 2-D (or, ``row_shape=()``, 1-D) ``.npy`` file built by appending rows."""

    def __init__(self, path: Path, dtype: type | np.dtype, row_shape: tuple[int, ...]) -> None:
        self.path = path
        self.dtype = np.dtype(dtype)
        self.row_shape = row_shape
        self.rows = 0
        self._out: IO[bytes] = path.open("wb")
        self._out.write(b"\0" * HEADER_BYTES)

    def append(self, rows: np.ndarray) -> None:
        if rows.shape[1:] != self.row_shape:
            raise SnapshotError(
                f"{self.path.name}: rows of shape {rows.shape[1:]}, not {self.row_shape}"
            )
        self._out.write(np.ascontiguousarray(rows, dtype=self.dtype).tobytes())
        self.rows += len(rows)

    def finish(self) -> None:
        """Write the header for the rows appended, flush and fsync, close."""
        self._out.seek(0)
        self._out.write(npy_header(self.dtype, (self.rows, *self.row_shape)))
        self._out.flush()
        os.fsync(self._out.fileno())
        self._out.close()

    def close(self) -> None:
        self._out.close()


def npy_header(dtype: np.dtype, shape: tuple[int, ...]) -> bytes:
    """The ``.npy`` 1.0 header of a C-ordered array, exactly :data:`HEADER_BYTES` long."""
    descr = np.lib.format.dtype_to_descr(dtype)
    described = repr({"descr": descr, "fortran_order": False, "shape": shape})
    room = HEADER_BYTES - 10  # 6 magic + 2 version + 2 length bytes
    if len(described) + 1 > room:
        raise SnapshotError(f"an array of shape {shape} does not fit the reserved header")
    text = described.ljust(room - 1) + "\n"
    return np.lib.format.magic(1, 0) + struct.pack("<H", room) + text.encode("latin1")


def load_array(path: Path, *, mmapped: bool) -> np.ndarray:
    """An ``.npy`` array, memory-mapped read-only or read into RAM (never pickled objects)."""
    mode: Literal["r"] | None = "r" if mmapped else None
    array: np.ndarray = np.load(path, mmap_mode=mode, allow_pickle=False)
    return array


class RowReader:
    """Rows of a 2-D ``.npy`` file (``array``: it memory-mapped) read with ``pread``.

    Rows read through a mapping stay resident with their neighbours, so scattered re-ranks
    would make the whole file resident; read with ``pread`` they stay in the shared page cache.
    """

    def __init__(self, path: Path, array: np.memmap) -> None:
        self.shape = array.shape
        self.dtype = array.dtype
        self._offset = int(array.offset)
        self._row_bytes = int(array.dtype.itemsize * int(np.prod(array.shape[1:])))
        self._fd = os.open(path, os.O_RDONLY)
        weakref.finalize(self, os.close, self._fd)

    def read(self, rows: np.ndarray) -> np.ndarray:
        """The given rows (ascending), one ``pread`` per run of consecutive rows."""
        out = np.empty((len(rows), *self.shape[1:]), dtype=self.dtype)
        if not len(rows):
            return out
        view = out.reshape(-1).view(np.uint8).data
        size = self._row_bytes
        cuts = np.flatnonzero(np.diff(rows) != 1) + 1
        first = np.concatenate([[0], cuts])
        ends = np.concatenate([cuts, [len(rows)]]) * size
        starts = first * size
        offsets = self._offset + rows[first].astype(np.int64) * size
        fd, pread = self._fd, os.preadv
        # The loop of one call per run is the cost (~1-2 us a row): keep it to plain ints.
        for lo, hi, at in zip(starts.tolist(), ends.tolist(), offsets.tolist(), strict=True):
            if pread(fd, [view[lo:hi]], at) != hi - lo:
                raise SnapshotError(f"short read at byte {at}: the file was truncated")
        return out
