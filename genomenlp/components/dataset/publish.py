"""Publish a split's working parquet as parquet, csv, json lines and a ``save_to_disk`` folder, streaming.

One pass reads the working file a record batch at a time and appends to the CSV, the JSON lines
and an Arrow stream file under ``OUT/.work``. ``datasets`` memory-maps that file for its own parquet
and ``save_to_disk`` writers, so no step holds the whole split in memory.

The JSON lines are byte for byte what ``Dataset.to_json`` writes, and the CSV is what
``Dataset.to_csv(index=False)`` writes except for list columns: those are JSON lists
(``"[0,43,31]"``), never numpy's printing (``[ 0 43 31 …]``, wrapped, and cut to ``…`` above 1,000
items), which no reader could parse back and which lost tokens. List text is laid out with array
arithmetic over whole batches: formatting one cell at a time was most of dataset creation's time.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
from pathlib import Path

import numpy as np

WORK_DIR = ".work"
# Formatting needs about 80 bytes of temporaries per list item, so batches are sized by items, not rows.
_BATCH_ITEMS = 1 << 18
_BATCH_ROWS_RANGE = (64, 1 << 16)
_POWERS = 10 ** np.arange(1, 19, dtype=np.int64)
_TABLE_SPAN = 1 << 20
_OPEN, _CLOSE, _ZERO, _MINUS, _COMMA = (ord(char) for char in "[]0-,")


def split_features(schema, label_names: list[str]):
    """``datasets.Features`` of a working split's schema, with ``labels`` as a ``ClassLabel`` of ``label_names``."""
    import datasets

    features = datasets.Features.from_arrow_schema(schema)
    features["labels"] = datasets.ClassLabel(names=list(label_names))
    return features


def _digit_tables(numbers):
    """Signed width of each number and a function giving each one's ASCII digit at ``10**power``.

    Token ids span a small range, so their digits are looked up in tables over that range: an
    int64 division per number and digit was most of the formatting time.
    """
    low, high = int(numbers.min(initial=0)), int(numbers.max(initial=0))
    if high - low < _TABLE_SPAN:
        index = numbers - low
        span = np.arange(low, high + 1, dtype=np.int64)
    else:
        index, span = slice(None), numbers
    magnitude = np.abs(span)
    digits = 1 + np.searchsorted(_POWERS, magnitude, side="right")
    signed = (digits + (span < 0))[index]

    def digit_at(power: int):
        return (_ZERO + (magnitude // 10**power) % 10).astype(np.uint8)[index]

    return signed, digits[index], digit_at


def _row_numbers(array, rows):
    """The numbers of the chosen rows of a list array, in order, as int64, and each chosen row's length."""
    offsets = array.offsets.to_numpy().astype(np.int64)
    sizes = np.diff(offsets)[rows]
    values = array.values.to_numpy(zero_copy_only=False)
    if rows.all():
        return values[offsets[0] : offsets[-1]].astype(np.int64), sizes
    first = np.cumsum(sizes) - sizes
    return values[np.repeat(offsets[:-1][rows] - first, sizes) + np.arange(sizes.sum())].astype(np.int64), sizes


def _write_numbers(buffer, end, tables, sink: int) -> None:
    """Write each number (``_digit_tables`` of them) to end just before ``end``; byte ``sink`` takes no-op writes."""
    signed, digits, digit_at = tables
    for power in range(int(digits.max(initial=0))):
        buffer[end - 1 if power == 0 else np.where(digits > power, end - 1 - power, sink)] = digit_at(power)
    buffer[np.where(signed > digits, end - 1 - digits, sink)] = _MINUS


def _string_array(begin, buffer, valid, null_text=None):
    """A large-string array over ``buffer`` cut at ``begin``; rows not ``valid`` become null (or ``null_text``)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    texts = pa.LargeStringArray.from_buffers(len(begin) - 1, pa.py_buffer(begin), pa.py_buffer(buffer))
    if valid.all():
        return texts
    return pc.if_else(pa.array(valid), texts, pa.scalar(null_text, pa.large_string()))


def json_list_text(array):
    """Each cell of an Arrow list-of-integers array as JSON, ``[0,43,31]`` (``null`` for a null cell)."""
    valid = np.ones(len(array), bool) if array.null_count == 0 else array.is_valid().to_numpy(zero_copy_only=False)
    numbers, sizes = _row_numbers(array, valid)
    tables = _digit_tables(numbers)
    cost = tables[0] + 1  # each number and the comma after it
    text_length = np.zeros(len(array), np.int64)
    row_cost = np.bincount(np.repeat(np.arange(len(sizes)), sizes), cost, minlength=len(sizes)).astype(np.int64)
    text_length[valid] = 1 + row_cost + (sizes == 0)  # "[" and numbers with commas, the last one "]"
    begin = np.concatenate(([0], np.cumsum(text_length)))
    sink = int(begin[-1])
    buffer = np.full(sink + 1, _COMMA, np.uint8)
    row_begin = begin[:-1][valid]
    buffer[row_begin] = _OPEN
    buffer[begin[1:][valid] - 1] = _CLOSE
    # Positions in 32 bits where they fit: this arithmetic runs once per number, and halving its bytes pays.
    position = np.int32 if sink < np.iinfo(np.int32).max else np.int64
    cost = cost.astype(position)
    before_row = np.repeat((np.cumsum(row_cost) - row_cost).astype(position), sizes)
    start_in_row = np.cumsum(cost, dtype=position) - cost - before_row
    end = np.repeat((row_begin + 1).astype(position), sizes) + start_in_row + cost - 1
    _write_numbers(buffer, end, tables, sink)
    return _string_array(begin, buffer[:sink], valid, "null")


def _large(text: str):
    import pyarrow as pa

    return pa.scalar(text, pa.large_string())


def _python_csv_cell(value: str) -> str:
    # The csv module decides, as it did inside pandas; which characters force quotes varies by Python version.
    line = io.StringIO()
    csv.writer(line, lineterminator=os.linesep).writerow([value])
    return line.getvalue()[: -len(os.linesep)]


def _csv_cells(column):
    """One column's CSV cell text, quoted as pandas' ``to_csv`` (the csv module, minimal quoting) quotes it."""
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = column.type
    if pa.types.is_list(kind) and pa.types.is_integer(kind.value_type):
        # JSON lists, which the training reader parses back; quoted where they hold a comma.
        text = json_list_text(column)
        quote = _large('"')
        quoted = pc.binary_join_element_wise(quote, text, quote, _large(""))
        text = pc.if_else(pc.match_substring(text, ","), quoted, text)
    elif pa.types.is_integer(kind):
        text = pc.cast(column, pa.large_string())
    elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
        text = pc.cast(column, pa.large_string())
        tricky = pc.fill_null(pc.match_substring_regex(text, '[,"\r\n]'), False).to_numpy(zero_copy_only=False)
        if tricky.any():
            cells = text.to_pylist()
            for row in np.flatnonzero(tricky).tolist():
                cells[row] = _python_csv_cell(cells[row])
            text = pa.array(cells, pa.large_string())
    else:
        raise TypeError(f"column type {kind} has no CSV writer here")
    return pc.fill_null(text, "")


def csv_chunk(table, header: bool):
    """CSV of a table (UTF-8 bytes) as ``Dataset.to_csv(index=False)`` writes it, list cells as JSON."""
    import pyarrow.compute as pc

    lines = []
    if header:
        lines.append(",".join(_python_csv_cell(name) for name in table.column_names) + os.linesep)
    if table.num_rows:
        cells = [_csv_cells(column.combine_chunks()) for column in table.columns]
        rows = pc.binary_join_element_wise(*cells, _large(","))
        lines.append(_joined(pc.binary_join_element_wise(rows, _large(""), _large(os.linesep))))
    return b"".join(line.encode("utf-8") if isinstance(line, str) else line for line in lines)


def _pandas_json_string(value: str) -> str:
    # Text beyond printable ASCII is escaped by pandas itself, as ``Dataset.to_json`` had it escaped.
    import pandas as pd

    return pd.Series([value], dtype=object).to_json(orient="values")[1:-1]


def _json_cells(column):
    """One column's JSON values, written as pandas' ``to_json`` writes them (``/`` escaped, ASCII only)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = column.type
    if pa.types.is_list(kind) and pa.types.is_integer(kind.value_type):
        return json_list_text(column)
    if pa.types.is_integer(kind):
        return pc.fill_null(pc.cast(column, pa.large_string()), "null")
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
        raise TypeError(f"column type {kind} has no JSON writer here")
    text = pc.cast(column, pa.large_string())
    for char in ("\\", '"', "/"):  # the backslash first, so the ones added after stay single
        text = pc.replace_substring(text, char, "\\" + char)
    text = pc.binary_join_element_wise(_large('"'), text, _large('"'), _large(""))
    odd = pc.fill_null(pc.match_substring_regex(column, "[^ -~]"), False).to_numpy(zero_copy_only=False)
    if odd.any():
        cells, originals = text.to_pylist(), column.to_pylist()
        for row in np.flatnonzero(odd).tolist():
            cells[row] = _pandas_json_string(originals[row])
        text = pa.array(cells, pa.large_string())
    return pc.fill_null(text, "null")


def json_chunk(table):
    """JSON lines of a table (a buffer of UTF-8), byte for byte as ``Dataset.to_json`` writes them."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not table.num_rows:
        return b""
    names = _json_cells(pa.array(table.column_names, pa.string())).to_pylist()
    fields = [
        pc.binary_join_element_wise(_large(f"{name}:"), _json_cells(column.combine_chunks()), _large(""))
        for name, column in zip(names, table.columns, strict=True)
    ]
    rows = pc.binary_join_element_wise(*fields, _large(","))
    return _joined(pc.binary_join_element_wise(_large("{"), rows, _large("}\n"), _large("")))


def _joined(rows):
    """The bytes of a large-string array's values, back to back."""
    offsets = np.frombuffer(rows.buffers()[1], np.int64)[rows.offset : rows.offset + len(rows) + 1]
    return rows.buffers()[2][int(offsets[0]) : int(offsets[-1])]


def _check_labels(labels, label_names: list[str]) -> None:
    import pyarrow.compute as pc

    bounds = pc.min_max(labels).as_py()
    if bounds["min"] is not None and (bounds["min"] < 0 or bounds["max"] >= len(label_names)):
        raise ValueError(f"labels {bounds['min']}…{bounds['max']} outside the {len(label_names)} class names")


def _batch_rows(parquet) -> int:
    """Rows per record batch so that the longest list column holds about ``_BATCH_ITEMS`` items."""
    meta = parquet.metadata
    items = max(
        (sum(meta.row_group(group).column(column).num_values for group in range(meta.num_row_groups))
         for column in range(meta.num_columns)),
        default=0,
    )
    return int(np.clip(_BATCH_ITEMS * max(meta.num_rows, 1) // max(items, 1), *_BATCH_ROWS_RANGE))


def _stream(source: Path, arrow_path: Path, csv_path: Path, json_path: Path, label_names: list[str]):
    """One pass over the working parquet: an Arrow stream file for ``datasets``, the CSV and the JSON lines."""
    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(source)
    features = split_features(parquet.schema_arrow, label_names)
    # The working file's own types (list item names included) with the ``datasets`` feature metadata,
    # as ``Dataset(table).cast_column`` gave before.
    schema = parquet.schema_arrow.with_metadata(features.arrow_schema.metadata)
    with pa.OSFile(str(arrow_path), "wb") as sink, pa.ipc.new_stream(sink, schema) as stream, open(
        csv_path, "wb"
    ) as csv_file, open(json_path, "wb") as json_file:
        pending, rows, header = [], _batch_rows(parquet), [True]

        def write_text() -> None:
            text_table = pa.concat_tables(pending) if pending else schema.empty_table()
            csv_file.write(csv_chunk(text_table, header=header.pop() if header else False))
            json_file.write(json_chunk(text_table))
            pending.clear()

        # Read in record batches of ``datasets``' default batch size, the chunks ``cast_column`` left:
        # its parquet writer cuts pages by chunk, so ``<split>.parquet`` stays byte for byte as it was.
        for batch in parquet.iter_batches(batch_size=datasets.config.DEFAULT_MAX_BATCH_SIZE, columns=schema.names):
            _check_labels(batch.column("labels"), label_names)
            table = pa.Table.from_batches([batch]).cast(schema)
            stream.write_table(table)
            pending.append(table)
            if sum(piece.num_rows for piece in pending) >= rows:
                write_text()
        if pending or header:  # the last rows, or the header line of an empty split
            write_text()
    return features


def publish_split(out_dir, split: str, label_names: list[str]) -> None:
    """Write ``<split>.parquet``, ``.csv``, ``.json`` and ``<split>/`` from ``OUT/.work/<split>.parquet``.

    Every output is written under ``OUT/.work`` and renamed into place when complete, so a failure
    leaves only working files, which the caller's staging folder discards.

    Args:
        out_dir: The (staged, local) dataset folder.
        split: Split name, e.g. ``train``.
        label_names: Class names, in label order, for the ``ClassLabel`` feature.
    """
    import datasets

    out_dir = Path(out_dir)
    work = out_dir / WORK_DIR
    source = work / f"{split}.parquet"
    arrow_path = work / f"{split}.arrow"
    partial = {suffix: work / f"{split}.partial{suffix}" for suffix in (".parquet", ".csv", ".json", "")}
    datasets.disable_progress_bars()
    features = _stream(source, arrow_path, partial[".csv"], partial[".json"], label_names)
    dataset = datasets.Dataset.from_file(str(arrow_path), info=datasets.DatasetInfo(features=features))
    dataset.to_parquet(str(partial[".parquet"]))
    shutil.rmtree(partial[""], ignore_errors=True)
    # ``datasets`` writes no shard for an empty split, and then cannot load the folder: ask for one.
    dataset.save_to_disk(str(partial[""]), num_shards=None if len(dataset) else 1)
    del dataset  # release the memory map before its file goes
    for suffix, path in partial.items():
        target = out_dir / f"{split}{suffix}"
        if target.is_dir():
            shutil.rmtree(target)
        os.replace(path, target)
    arrow_path.unlink()
    source.unlink()
