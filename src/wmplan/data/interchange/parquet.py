"""Frames as parquet rows, shared by the LeRobot and Hugging Face layouts.

A column is described by (dtype, width): dtype "image" (a struct {bytes: PNG, path: null}, what Hugging
Face `datasets` stores for its `Image` feature), or a numpy dtype name with width None (a scalar) or n
(a fixed-length list of n values, `datasets`' `Sequence(length=n)`). The schema carries `datasets`'
own metadata (key "huggingface": {"info": {"features": ...}}), which `datasets` reads back to decode the
image column as images; it is checked against huggingface/datasets' features.py (`Features.arrow_schema`
and `from_arrow_schema`: the metadata is used only where its arrow type equals the column's).

Reading gives episodes back: rows grouped by an episode column, ordered by a frame column, an episode
split over two files joined again.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from wmplan.data.interchange.common import png_bytes, png_frame
from wmplan.data.store import DatasetError

Spec = dict[str, tuple[str, int | None]]  # column name -> (dtype or "image", width or None for a scalar)


def arrow_type(pa: Any, dtype: str, width: int | None) -> Any:
    if dtype == "image":
        return pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    scalar = pa.from_numpy_dtype(np.dtype(dtype))
    return scalar if width is None else pa.list_(scalar, width)


def hf_feature(dtype: str, width: int | None) -> dict[str, Any]:
    """A column's feature as `datasets` serialises it. "Sequence" (not datasets 4's "List") because
    datasets 2, 3 and 4 all read it."""
    if dtype == "image":
        return {"_type": "Image"}
    value = {"dtype": dtype, "_type": "Value"}
    return value if width is None else {"feature": value, "length": width, "_type": "Sequence"}


def make_schema(pa: Any, spec: Spec, extra_metadata: dict[str, str] | None = None) -> Any:
    features = {name: hf_feature(dtype, width) for name, (dtype, width) in spec.items()}
    metadata = {"huggingface": json.dumps({"info": {"features": features}}), **(extra_metadata or {})}
    fields = [pa.field(name, arrow_type(pa, dtype, width)) for name, (dtype, width) in spec.items()]
    return pa.schema(fields, metadata=metadata)


def make_table(pa: Any, schema: Any, columns: dict[str, np.ndarray]) -> Any:
    """One table (one episode) from numpy columns; images are uint8 (T, H, W, 3), PNG-encoded here."""
    arrays = []
    for field in schema:
        values = columns[field.name]
        if pa.types.is_struct(field.type):
            encoded = pa.array([png_bytes(frame) for frame in values], pa.binary())
            arrays.append(pa.StructArray.from_arrays([encoded, pa.nulls(len(values), pa.string())], ["bytes", "path"]))
        elif pa.types.is_fixed_size_list(field.type):
            width = field.type.list_size
            flat = pa.array(np.ascontiguousarray(values).reshape(-1), field.type.value_type)
            arrays.append(pa.FixedSizeListArray.from_arrays(flat, width))
        else:
            arrays.append(pa.array(np.asarray(values).reshape(-1), field.type))
    return pa.Table.from_arrays(arrays, schema=schema)


class ShardWriter:
    """Tables written one row group each into numbered parquet files, a new file once one holds about
    `max_mb` (so a reader can fetch one episode with one row group read, as LeRobot's own writer does)."""

    def __init__(self, pq: Any, schema: Any, path_for, max_mb: float):
        self.pq, self.schema, self.path_for, self.max_bytes = pq, schema, path_for, max_mb * 2**20
        self.file_index, self._bytes = 0, 0
        self._writer: Any = None
        self.paths: list[Path] = []

    def write(self, table: Any) -> int:
        """Write one table; returns the index of the file it went into."""
        if self._writer is not None and self._bytes + table.nbytes > self.max_bytes:
            self._writer.close()
            self._writer, self._bytes = None, 0
            self.file_index += 1
        if self._writer is None:
            path = Path(self.path_for(self.file_index))
            path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = self.pq.ParquetWriter(str(path), self.schema, compression="snappy")
            self.paths.append(path)
        self._writer.write_table(table)
        self._bytes += table.nbytes
        return self.file_index

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def column_values(column: Any, dtype: str, where: str) -> np.ndarray:
    """A column of one file as numpy: images decoded to uint8 (T, H, W, 3), lists to (T, n)."""
    import pyarrow as pa

    column = column.combine_chunks() if hasattr(column, "combine_chunks") else column
    if dtype == "image":
        if not pa.types.is_struct(column.type):
            raise DatasetError(f"{where}: the image column is {column.type}, not a struct {{bytes, path}} of PNGs")
        data = column.field("bytes").to_pylist()
        if any(d is None for d in data):
            raise DatasetError(f"{where}: an image holds a path but no bytes; only embedded images are read")
        return np.stack([png_frame(d, where) for d in data]) if data else np.zeros((0, 0, 0, 3), np.uint8)
    if pa.types.is_fixed_size_list(column.type):
        width = column.type.list_size
        return column.flatten().to_numpy(zero_copy_only=False).reshape(len(column), width).astype(dtype)
    if pa.types.is_list(column.type) or pa.types.is_large_list(column.type):
        rows = column.to_pylist()
        if len({len(r) for r in rows}) > 1:
            raise DatasetError(f"{where}: rows of different lengths; expected one width per frame")
        return np.asarray(rows, dtype=dtype).reshape(len(rows), -1)
    return column.to_numpy(zero_copy_only=False).astype(dtype)


def read_episodes(
    files: list[Path], columns: dict[str, tuple[str, str]], episode_col: str, frame_col: str
) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
    """(episode index, {key: array}) in episode order from parquet `files`; `columns` maps each key to
    (column name, dtype). Frames are ordered by `frame_col`, which must count 0, 1, ... per episode."""
    import pyarrow.parquet as pq

    carry: tuple[int, list[dict[str, np.ndarray]], list[np.ndarray]] | None = None
    for path in files:
        names = [name for name, _ in columns.values()]
        try:
            table = pq.read_table(str(path), columns=[*names, episode_col, frame_col])
        except Exception as exc:  # pyarrow's own error types, e.g. a missing column
            raise DatasetError(f"{path}: cannot be read as the expected parquet columns ({exc})") from exc
        episode = table.column(episode_col).to_numpy(zero_copy_only=False).astype(np.int64)
        frame = table.column(frame_col).to_numpy(zero_copy_only=False).astype(np.int64)
        order = np.lexsort((frame, episode))
        if not np.array_equal(order, np.arange(len(order))):
            table, episode, frame = table.take(order), episode[order], frame[order]
        values = {key: column_values(table.column(name), dtype, str(path)) for key, (name, dtype) in columns.items()}
        for start, end in _runs(episode):
            index = int(episode[start])
            part = {key: array[start:end] for key, array in values.items()}
            if carry is not None and carry[0] != index:
                yield _joined(carry)
                carry = None
            carry = (
                (index, [part], [frame[start:end]])
                if carry is None
                else (index, carry[1] + [part], carry[2] + [frame[start:end]])
            )
    if carry is not None:
        yield _joined(carry)


def _runs(values: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of each run of equal values in a sorted array."""
    cuts = np.flatnonzero(np.diff(values)) + 1
    bounds = np.concatenate([[0], cuts, [len(values)]]).astype(int)
    return [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]


def _joined(carry: tuple[int, list[dict[str, np.ndarray]], list[np.ndarray]]) -> tuple[int, dict[str, np.ndarray]]:
    index, parts, frames = carry
    frame = np.concatenate(frames)
    if not np.array_equal(np.sort(frame), np.arange(len(frame))):
        raise DatasetError(
            f"episode {index}: frame indices {frame.tolist()[:8]}... do not count 0, 1, ...; frames are missing or repeated"
        )
    order = np.argsort(frame, kind="stable")
    return index, {key: np.concatenate([p[key] for p in parts])[order] for key in parts[0]}
