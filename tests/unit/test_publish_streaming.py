"""Publishing a split streams it: the four formats hold the working rows, and common readers read them back.

The CSV and JSON lines come from library writers, so their contract is the parsed content, not the
bytes: ``json``, pandas and ``datasets`` get back exactly the parquet's rows, hostile record ids included.
"""

from __future__ import annotations

import json
import random
import tracemalloc

import datasets
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest

from genomenlp.components.dataset import publish
from genomenlp.components.dataset.writer import WORK_DIR, _schema, finalise_split_formats

NAMES = ["promoter", "non_promoter"]
COLUMNS = _schema().names
LIST_COLUMNS = ["input_ids", "token_type_ids", "attention_mask"]
TEXT_COLUMNS = ["feature", "record_id", "strand"]
# FASTA ids are free text after ">": quotes, separators, escapes, line breaks a parser may split on,
# non-ASCII, and text that readers turn into missing values or numbers unless told it is text.
HOSTILE_IDS = [
    "plain", "a,b", 'say "hi"', '"quoted"', "back\\slash", "x/y", "é-ß", "two\nlines", "car\rriage",
    "crlf\r\nend", "tab\there", " padded ", "\u2028😀", "", "NA", "null", "007", "[1,2]", '{"a": 1}',
]


def _rows(count: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    # Rows long enough for numpy to wrap or summarise them, were lists printed as numpy prints them.
    lengths = rng.choice([2, 3, 30, 81, 1200], count, p=[0.1, 0.1, 0.3, 0.45, 0.05])
    ids = [[0, *rng.integers(5, 32_005, n - 2).tolist(), 1] for n in lengths]
    return {
        "idx": list(range(count)),
        "feature": ["".join(rng.choice(list("ACGT"), 12)) for _ in range(count)],
        "labels": [row % 2 for row in range(count)],
        "input_ids": ids,
        "token_type_ids": [[0] * len(row) for row in ids],
        "attention_mask": [[1] * len(row) for row in ids],
        "record_id": [HOSTILE_IDS[row % len(HOSTILE_IDS)] for row in range(count)],
        "parent": [row // 2 for row in range(count)],
        "strand": ["+-"[row % 2] for row in range(count)],
        "start": [0] * count,
        "end": [12] * count,
    }


def _working_split(out, split: str, rows: dict, row_group: int = 64):
    """Write ``OUT/.work/<split>.parquet`` as ``SplitWriter`` does, in several row groups."""
    table = pa.Table.from_pydict(rows, schema=_schema())
    (out / WORK_DIR).mkdir(parents=True, exist_ok=True)
    pq.write_table(table, out / WORK_DIR / f"{split}.parquet", row_group_size=row_group)
    return table


def _reference_parquet(working, folder):
    """The parquet publishing wrote before streaming: ``datasets`` on the whole working table in memory."""
    dataset = datasets.Dataset(pq.read_table(working)).cast_column("labels", datasets.ClassLabel(names=NAMES))
    folder.mkdir()
    dataset.to_parquet(str(folder / "split.parquet"))
    return folder / "split.parquet"


def _decoded(rows: list[dict]) -> list[dict]:
    """Rows read from the CSV, with their JSON-list cells parsed."""
    return [{**row, **{column: json.loads(row[column]) for column in LIST_COLUMNS}} for row in rows]


def _csv_readers(path, cache) -> dict:
    """The CSV's rows as pandas and ``datasets`` read it, text columns read as text."""
    text = {column: str for column in TEXT_COLUMNS}
    frame = pd.read_csv(path, dtype=text, keep_default_na=False)
    assert list(frame.columns) == COLUMNS
    # ``datasets`` reads through pandas too; its CSV options take column types as features.
    features = datasets.Features({column: datasets.Value("string" if column in text or column in LIST_COLUMNS
                                                         else "int64") for column in COLUMNS})
    via_datasets = datasets.load_dataset("csv", data_files=str(path), split="train", cache_dir=str(cache),
                                         features=features, keep_default_na=False)
    return {"pandas csv": _decoded(frame.to_dict("records")), "datasets csv": _decoded(via_datasets.to_list())}


def _json_readers(path, cache) -> dict:
    """The JSON lines' rows as ``json``, pandas and ``datasets`` read them."""
    lines = path.read_text(encoding="utf-8").split("\n")
    assert lines[-1] == ""  # every row ends its line, and no line break hides inside one
    frame = pd.read_json(path, lines=True, dtype=False)
    via_datasets = datasets.load_dataset("json", data_files=str(path), split="train", cache_dir=str(cache))
    return {"json": [json.loads(line) for line in lines[:-1]], "pandas json": frame.to_dict("records"),
            "datasets json": via_datasets.to_list()}


@pytest.fixture(autouse=True)
def _quiet():
    datasets.disable_progress_bars()


@pytest.mark.parametrize("count", [0, 1, 2345])  # 2,345 rows are read in three record batches
def test_four_formats_round_trip_the_working_rows(tmp_path, count):
    out = tmp_path / "out"
    table = _working_split(out, "train", _rows(count))
    reference = _reference_parquet(out / WORK_DIR / "train.parquet", tmp_path / "reference")

    finalise_split_formats(out, "train", NAMES)

    published = ["train", "train.csv", "train.json", "train.parquet"]
    assert sorted(path.name for path in out.iterdir()) == [WORK_DIR, *published]
    assert not list((out / WORK_DIR).iterdir())  # the working file and every temporary are gone
    # ``cast_column`` leaves an empty dataset's labels as plain integers, so before streaming an empty
    # split's parquet lacked the ClassLabel; now it has it, and only its metadata differs.
    if count:
        assert (out / "train.parquet").read_bytes() == reference.read_bytes()
    expected = table.to_pylist()

    parquet = datasets.Dataset(pq.read_table(out / "train.parquet"))  # features from its ``huggingface`` metadata
    on_disk = datasets.load_from_disk(str(out / "train"))
    for loaded in (parquet, on_disk):
        assert loaded.features["labels"] == datasets.ClassLabel(names=NAMES)
        assert list(loaded.features) == COLUMNS
        assert loaded.to_list() == expected

    header = (out / "train.csv").read_text(encoding="utf-8").split("\n")[0]
    assert header == ",".join(f'"{column}"' for column in COLUMNS)
    if not count:
        assert pd.read_csv(out / "train.csv").empty
        assert (out / "train.json").read_bytes() == b""
        return
    readers = {**_csv_readers(out / "train.csv", tmp_path / "csv"),
               **_json_readers(out / "train.json", tmp_path / "json")}
    for reader, rows in readers.items():
        assert len(rows) == len(expected), reader
        for row, want in zip(rows, expected, strict=True):  # row by row, so a failure names the row
            assert row == want, (reader, want["idx"])
    from genomenlp.components.training.data import load_split

    for file_format in ("csv", "json"):  # the training command's own reader
        split = load_split(str(out / f"train.{file_format}"), file_format)
        assert [list(ids) for ids in split.input_ids] == [row["input_ids"] for row in expected], file_format


def test_list_text_is_json():
    rng = random.Random(3)
    rows = []
    for _ in range(600):
        low, high = rng.choice([(0, 1), (0, 99), (-5, 5), (0, 32_000), (-(2**31), 2**31 - 1)])
        length = rng.choice([0, 1, 24, 25, 37, 81, 1000, 1001, rng.randint(0, 150)])
        rows.append(None if rng.random() < 0.03 else [rng.randint(low, high) for _ in range(length)])
    for kind in (pa.int8(), pa.int32(), pa.int64()):
        cells = rows if kind != pa.int8() else [row and [value % 100 for value in row] for row in rows]
        array = pa.array(cells, pa.list_(kind)).slice(5)  # a slice starts part-way into the values
        expected = [None if row is None else json.dumps(row, separators=(",", ":")) for row in array.to_pylist()]
        assert publish.json_list_text(array).to_pylist() == expected


def test_csv_cells_round_trip_through_readers(tmp_path):
    ids = [*HOSTILE_IDS, None]
    table = pa.table({
        "record_id": pa.array(ids, pa.string()),
        "parent": pa.array([*range(len(ids) - 1), None], pa.int64()),
        "input_ids": pa.array([[0, 43, 31]] * (len(ids) - 2) + [[], None], pa.list_(pa.int32())),
    })
    path = tmp_path / "cells.csv"
    pa_csv.write_csv(publish.csv_table(table), path)
    frame = pd.read_csv(path, dtype={"record_id": str}, keep_default_na=False)
    assert frame["record_id"].tolist() == [*HOSTILE_IDS, ""]  # a missing id is an empty cell
    assert [json.loads(cell) for cell in frame["input_ids"][:-1]] == table.column("input_ids").to_pylist()[:-1]
    assert frame["input_ids"].iloc[-1] == ""
    # pyarrow's own reader tells a missing value (an empty cell) from empty text (a quoted "").
    options = pa_csv.ConvertOptions(column_types={"record_id": pa.string(), "input_ids": pa.string()},
                                    strings_can_be_null=True, quoted_strings_can_be_null=False)
    back = pa_csv.read_csv(path, convert_options=options)
    assert back.column("record_id").to_pylist() == ids
    assert back.column("parent").to_pylist() == table.column("parent").to_pylist()


def test_csv_refuses_a_nested_column_it_has_no_text_for():
    table = pa.table({"spans": pa.array([[[1, 2]]], pa.list_(pa.list_(pa.int64())))})
    with pytest.raises(TypeError, match="column 'spans'"):
        publish.csv_table(table)


def test_a_label_outside_the_names_fails_loudly(tmp_path):
    rows = _rows(10)
    rows["labels"][3] = 2
    _working_split(tmp_path, "test", rows)
    with pytest.raises(ValueError, match="outside the 2 class names"):
        finalise_split_formats(tmp_path, "test", NAMES)
    assert sorted(path.name for path in tmp_path.iterdir()) == [WORK_DIR]  # nothing half-written is published


def _big_split(count: int, tokens: int):
    """A working split of ``count`` rows of ``tokens`` ids each, built with numpy so that it is quick."""
    ids = np.random.default_rng(0).integers(5, 4_000, (count, tokens), dtype=np.int32)

    def lists(values):
        offsets = pa.array(np.arange(0, count * tokens + 1, tokens, dtype=np.int32))
        return pa.ListArray.from_arrays(offsets, pa.array(values.ravel()))

    columns = {
        "idx": np.arange(count), "feature": pa.array(["ACGT" * 10] * count), "labels": np.arange(count) % 2,
        "input_ids": lists(ids), "token_type_ids": lists(np.zeros_like(ids, np.int8)),
        "attention_mask": lists(np.ones_like(ids, np.int8)), "record_id": pa.array(["chr1/part"] * count),
        "parent": np.arange(count), "strand": pa.array(["+"] * count), "start": np.zeros(count, np.int64),
        "end": np.full(count, 40),
    }
    return pa.table(columns).cast(_schema())


def _publishing_peaks(folder, rows: int) -> tuple[int, int, int]:
    """Python and Arrow peak bytes of publishing a working split of ``rows`` rows, and its size as Arrow."""
    table = _big_split(rows, 40)
    split_bytes = table.nbytes
    (folder / WORK_DIR).mkdir(parents=True)
    pq.write_table(table, folder / WORK_DIR / "train.parquet", row_group_size=2048)
    del table
    # Arrow allocates outside Python's allocator: count its allocations through a pool of their own.
    pool, previous = pa.proxy_memory_pool(pa.default_memory_pool()), pa.default_memory_pool()
    pa.set_memory_pool(pool)
    tracemalloc.start()
    try:
        finalise_split_formats(folder, "train", NAMES)
        python_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        pa.set_memory_pool(previous)
    return python_peak, pool.max_memory(), split_bytes


def test_publishing_memory_stays_flat(tmp_path):
    warm = _big_split(100, 40)  # first use imports modules, whose memory is not the split's
    _working_split(tmp_path / "warm", "train", warm.to_pydict())
    finalise_split_formats(tmp_path / "warm", "train", NAMES)
    small = _publishing_peaks(tmp_path / "small", 10_000)
    python_peak, arrow_peak, split_bytes = _publishing_peaks(tmp_path / "big", 40_000)
    # Four times the rows (≈ 14 MB as Arrow; many times more as Python objects) and the peaks stay put:
    # each writer holds a record batch at a time, never the split.
    assert python_peak < 1.25 * small[0], (python_peak, small)
    assert arrow_peak < 1.25 * small[1], (arrow_peak, small)
    assert max(python_peak, arrow_peak) < split_bytes / 3, (python_peak, arrow_peak, split_bytes)
    big = tmp_path / "big"
    assert datasets.load_from_disk(str(big / "train")).num_rows == 40_000
    assert sum(1 for _ in open(big / "train.json", "rb")) == 40_000
    assert len(pd.read_csv(big / "train.csv", usecols=["idx"])) == 40_000


def test_the_tokeniser_hash_survives_publishing_and_only_the_parquet_footer_differs(tmp_path):
    """The working split's hash reaches the parquet footer and dataset_info.json; the data pages stay datasets'."""
    import struct

    from genomenlp.components.filenames import TOKENIZER_SHA256_KEY

    digest = "ab" * 32
    out = tmp_path / "out"
    rows = pa.Table.from_pydict(_rows(2345), schema=_schema(digest))
    (out / WORK_DIR).mkdir(parents=True)
    pq.write_table(rows, out / WORK_DIR / "train.parquet", row_group_size=64)
    plain = tmp_path / "plain.parquet"
    pq.write_table(rows.replace_schema_metadata(None), plain, row_group_size=64)
    reference = _reference_parquet(plain, tmp_path / "reference")

    finalise_split_formats(out, "train", NAMES)

    ours, theirs = (out / "train.parquet").read_bytes(), reference.read_bytes()

    def pages(data: bytes) -> bytes:  # all but the footer: magic, data pages and page index
        return data[: -struct.unpack("<i", data[-8:-4])[0] - 8]

    assert pages(ours) == pages(theirs) and len(ours) > len(theirs)
    metadata = pq.read_schema(out / "train.parquet").metadata
    assert metadata[TOKENIZER_SHA256_KEY.encode()] == digest.encode()
    assert metadata[b"huggingface"] == pq.read_schema(reference).metadata[b"huggingface"]
    assert digest in json.loads((out / "train" / "dataset_info.json").read_text())["description"]
