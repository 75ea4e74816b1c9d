r"""Publish a split's working parquet as parquet, csv, json lines and a ``save_to_disk`` folder, streaming.

One pass reads the working file a record batch at a time and appends each batch to an Arrow
stream file under ``OUT/.work`` and, through pyarrow's CSV writer, to the CSV. ``datasets``
memory-maps the Arrow file for its parquet, JSON lines and ``save_to_disk`` writers, which also
go a batch at a time, so no step holds the whole split in memory.

Parquet and the ``save_to_disk`` folder are the canonical copies; the text copies are what the
libraries' writers make of the same rows:

- CSV (``pyarrow.csv.CSVWriter``, RFC 4180, UTF-8): a header line, then one line per row; every
  text cell and every header name in double quotes (a quote inside is doubled, a line break inside
  is kept), integers bare, an empty cell for a missing value. List columns (token ids, type ids,
  attention masks) are JSON lists in a text cell, ``"[0,43,31]"``: ``pandas.read_csv`` then
  ``json.loads`` of the cell gives the ids back. (Writing the lists through pandas would print
  them as numpy does, ``[ 0 43 31 …]``: wrapped, cut to ``…`` above 1,000 items, unreadable.)
  CSV carries no types: read ``record_id`` and the other text columns as text (pandas
  ``dtype=str, keep_default_na=False``), or ids such as ``NA`` and ``007`` come back as NaN and 7.
- JSON lines (``Dataset.to_json``, pandas' writer): one object per row, list columns as JSON
  arrays, labels as class indices, non-ASCII text as ``\uXXXX`` escapes and ``/`` as ``\/``;
  ``pandas.read_json(lines=True)``, ``datasets.load_dataset("json")`` or ``json.loads`` per line
  read it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

WORK_DIR = ".work"


def split_features(schema, label_names: list[str]):
    """``datasets.Features`` of a working split's schema, with ``labels`` as a ``ClassLabel`` of ``label_names``."""
    import datasets

    features = datasets.Features.from_arrow_schema(schema)
    features["labels"] = datasets.ClassLabel(names=list(label_names))
    return features


def _is_integer_list(kind) -> bool:
    import pyarrow as pa

    return (pa.types.is_list(kind) or pa.types.is_large_list(kind)) and pa.types.is_integer(kind.value_type)


def json_list_text(column):
    """Each cell of an Arrow list-of-integers array as JSON text, ``[0,43,31]`` (null for a null cell)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    text = pa.large_string()
    items = pc.binary_join(pc.cast(column, pa.large_list(text)), pa.scalar(",", text))
    return pc.binary_join_element_wise(pa.scalar("[", text), items, pa.scalar("]", text), pa.scalar("", text))


def csv_table(table):
    """``table`` with every list-of-integers column as JSON text, the form pyarrow's CSV writer takes."""
    import pyarrow as pa

    columns, fields = [], []
    for field, column in zip(table.schema, table.columns, strict=True):
        if _is_integer_list(field.type):
            column, field = json_list_text(column), pa.field(field.name, pa.large_string())
        elif pa.types.is_nested(field.type):
            raise TypeError(f"column {field.name!r} of type {field.type} has no CSV form here")
        columns.append(column)
        fields.append(field.remove_metadata())
    return pa.table(columns, schema=pa.schema(fields))


def _check_labels(labels, label_names: list[str]) -> None:
    import pyarrow.compute as pc

    bounds = pc.min_max(labels).as_py()
    if bounds["min"] is not None and (bounds["min"] < 0 or bounds["max"] >= len(label_names)):
        raise ValueError(f"labels {bounds['min']}…{bounds['max']} outside the {len(label_names)} class names")


def _stream(source: Path, arrow_path: Path, csv_path: Path, label_names: list[str]):
    """One pass over the working parquet: an Arrow stream file for ``datasets``, and the CSV."""
    import datasets
    import pyarrow as pa
    import pyarrow.csv as pa_csv
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(source)
    features = split_features(parquet.schema_arrow, label_names)
    # The working file's own types (list item names included) with the ``datasets`` feature metadata,
    # as ``Dataset(table).cast_column`` gave before.
    schema = parquet.schema_arrow.with_metadata(features.arrow_schema.metadata)
    csv_schema = csv_table(schema.empty_table()).schema
    with pa.OSFile(str(arrow_path), "wb") as sink, pa.ipc.new_stream(sink, schema) as stream, pa.OSFile(
        str(csv_path), "wb"
    ) as csv_sink, pa_csv.CSVWriter(csv_sink, csv_schema) as csv_writer:
        # Read in record batches of ``datasets``' default batch size, the chunks ``cast_column`` left:
        # its parquet writer cuts pages by chunk, so ``<split>.parquet`` stays byte for byte as it was.
        for batch in parquet.iter_batches(batch_size=datasets.config.DEFAULT_MAX_BATCH_SIZE, columns=schema.names):
            _check_labels(batch.column("labels"), label_names)
            table = pa.Table.from_batches([batch]).cast(schema)
            stream.write_table(table)
            csv_writer.write_table(csv_table(table))
    return features


def _own_metadata(schema) -> dict:
    """The working file's schema metadata that is ours (the tokeniser's hash), not pyarrow's or ``datasets``'."""
    return {key: value for key, value in (schema.metadata or {}).items() if key.startswith(b"genomenlp.")}


def _dataset_description(own: dict) -> str:
    # ``save_to_disk`` keeps no schema metadata of its own; its dataset_info.json carries ours as the description.
    return "genomenlp dataset; " + "; ".join(f"{key.decode()}={value.decode()}" for key, value in sorted(own.items()))


def _write_parquet(dataset, path: Path, own: dict) -> None:
    """``Dataset.to_parquet`` with our schema metadata kept in the footer.

    ``datasets`` writes only its features into the schema; this uses its writer's choices (batch size,
    content-defined chunking, page index, column options), so the data pages are what it writes.
    """
    import json

    import pyarrow.parquet as pq
    from datasets.arrow_writer import get_parquet_column_options
    from datasets.io.parquet import ParquetDatasetWriter

    choices = ParquetDatasetWriter(dataset, str(path))
    schema = dataset.features.arrow_schema
    options = get_parquet_column_options(dataset.features, schema)
    with pq.ParquetWriter(str(path), schema=schema.with_metadata({**schema.metadata, **own}),
                          use_content_defined_chunking=choices.use_content_defined_chunking,
                          write_page_index=choices.write_page_index, **options) as writer:
        for offset in range(0, len(dataset), choices.batch_size):
            writer.write_table(dataset.data.table.slice(offset, choices.batch_size))
        if choices.use_content_defined_chunking is not False:
            writer.add_key_value_metadata(
                {"content_defined_chunking": json.dumps(choices.use_content_defined_chunking)})


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
    import pyarrow.parquet as pq

    own = _own_metadata(pq.read_schema(source))
    features = _stream(source, arrow_path, partial[".csv"], label_names)
    info = datasets.DatasetInfo(features=features, description=_dataset_description(own) if own else "")
    dataset = datasets.Dataset.from_file(str(arrow_path), info=info)
    _write_parquet(dataset, partial[".parquet"], own)
    dataset.to_json(str(partial[".json"]))
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
