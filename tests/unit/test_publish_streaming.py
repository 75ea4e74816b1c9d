"""Publishing a split streams it: the four formats hold the working rows, and our own readers read them back."""

from __future__ import annotations

import json
import random
import tracemalloc

import datasets
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from genomenlp.components.dataset import publish
from genomenlp.components.dataset.writer import WORK_DIR, _schema, finalise_split_formats

NAMES = ["promoter", "non_promoter"]
COLUMNS = _schema().names


def _rows(count: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    # Ids a CSV or JSON writer must quote or escape, and rows long enough for numpy to wrap or summarise.
    odd_ids = ["plain", "a,b", 'say "hi"', "x/y", "é-ß", "two\nlines"]
    lengths = rng.choice([2, 3, 30, 81, 1200], count, p=[0.1, 0.1, 0.3, 0.45, 0.05])
    ids = [[0, *rng.integers(5, 32_005, n - 2).tolist(), 1] for n in lengths]
    return {
        "idx": list(range(count)),
        "feature": ["".join(rng.choice(list("ACGT"), 12)) for _ in range(count)],
        "labels": [row % 2 for row in range(count)],
        "input_ids": ids,
        "token_type_ids": [[0] * len(row) for row in ids],
        "attention_mask": [[1] * len(row) for row in ids],
        "record_id": [odd_ids[row % len(odd_ids)] for row in range(count)],
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


LIST_COLUMNS = ["input_ids", "token_type_ids", "attention_mask"]


def _reference(working, folder):
    """What publishing wrote before streaming: ``datasets`` on the whole working table in memory.

    Except for the CSV's list cells, which are JSON lists (``datasets`` wrote numpy's printing).
    """
    dataset = datasets.Dataset(pq.read_table(working)).cast_column("labels", datasets.ClassLabel(names=NAMES))
    folder.mkdir()
    frame = dataset.to_pandas()
    for column in LIST_COLUMNS:
        frame[column] = frame[column].map(lambda cell: json.dumps(cell.tolist(), separators=(",", ":")))
    frame.to_csv(str(folder / "split.csv"), index=False)
    dataset.to_json(str(folder / "split.json"))
    dataset.to_parquet(str(folder / "split.parquet"))
    return folder


@pytest.fixture(autouse=True)
def _small_batches(monkeypatch):
    # Text is written every 1,500 rows, so 2,345 rows read in batches of 1,000 exercise every path.
    monkeypatch.setattr(publish, "_BATCH_ROWS_RANGE", (1500, 1500))
    datasets.disable_progress_bars()


@pytest.mark.parametrize("count", [0, 1, 2345])
def test_four_formats_round_trip_the_working_rows(tmp_path, count):
    out = tmp_path / "out"
    table = _working_split(out, "train", _rows(count))
    reference = _reference(out / WORK_DIR / "train.parquet", tmp_path / "reference")

    finalise_split_formats(out, "train", NAMES)

    published = ["train", "train.csv", "train.json", "train.parquet"]
    assert sorted(path.name for path in out.iterdir()) == [WORK_DIR, *published]
    assert not list((out / WORK_DIR).iterdir())  # the working file and every temporary are gone
    # ``cast_column`` leaves an empty dataset's labels as plain integers, so before streaming an empty
    # split's parquet lacked the ClassLabel; now it has it, and only its metadata differs.
    for suffix in (".csv", ".json", ".parquet") if count else (".csv", ".json"):
        assert (out / f"train{suffix}").read_bytes() == (reference / f"split{suffix}").read_bytes(), suffix
    expected = table.to_pylist()

    parquet = datasets.Dataset(pq.read_table(out / "train.parquet"))  # features from its ``huggingface`` metadata
    on_disk = datasets.load_from_disk(str(out / "train"))
    for loaded in (parquet, on_disk):
        assert loaded.features["labels"] == datasets.ClassLabel(names=NAMES)
        assert list(loaded.features) == COLUMNS
        assert loaded.to_list() == expected
    if count:
        json_rows = datasets.load_dataset(
            "json", data_files=str(out / "train.json"), split="train", cache_dir=str(tmp_path / "cache")
        )
        assert json_rows.column_names == COLUMNS
        assert json_rows.to_list() == expected
    else:
        assert (out / "train.json").read_bytes() == b""

    frame = pd.read_csv(out / "train.csv", keep_default_na=False)
    assert list(frame.columns) == COLUMNS
    assert frame["record_id"].tolist() == table.column("record_id").to_pylist()
    for column in LIST_COLUMNS:  # every token, long rows included
        assert [json.loads(cell) for cell in frame[column]] == [row[column] for row in expected]
    if count:
        from genomenlp.components.training.data import load_split

        split = load_split(str(out / "train.csv"), "csv")
        assert [list(ids) for ids in split.input_ids] == [row["input_ids"] for row in expected]


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
        expected = ["null" if row is None else json.dumps(row, separators=(",", ":")) for row in array.to_pylist()]
        assert publish.json_list_text(array).to_pylist() == expected


def test_csv_quotes_strings_as_pandas_does():
    # Which characters force quotes depends on the Python version (a lone "\r" did not before 3.12).
    odd = ["", "plain", "a,b", 'say "hi"', "two\nlines", "car\rriage", "tab\there", " padded ", "é", None]
    table = pa.table({"record_id": pa.array(odd, pa.string()), "parent": pa.array(range(len(odd)), pa.int64())})
    expected = table.to_pandas().to_csv(index=False).encode()
    assert publish.csv_chunk(table, header=True) == expected


def test_json_escapes_strings_as_pandas_does():
    odd = ["", "plain", 'say "hi"', "back\\slash", "x/y", "é", "tab\tnew\nline", "\x01\x7f", "\u2028😀", None]
    table = pa.table({"record_id": pa.array(odd, pa.string()), "parent": pa.array([1, None] * 5, pa.int64())})
    expected = table.to_pandas(integer_object_nulls=True).to_json(orient="records", lines=True).encode()
    assert publish.json_chunk(table) == expected


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


def test_publishing_memory_stays_flat(tmp_path, monkeypatch):
    monkeypatch.setattr(publish, "_BATCH_ITEMS", 1 << 15)
    monkeypatch.setattr(publish, "_BATCH_ROWS_RANGE", (16, 1 << 16))
    warm = _big_split(100, 40)  # first use imports modules, whose memory is not the split's
    _working_split(tmp_path / "warm", "train", warm.to_pydict())
    finalise_split_formats(tmp_path / "warm", "train", NAMES)
    table = _big_split(40_000, 40)
    split_bytes = table.nbytes  # ≈ 12.8 MB as Arrow; as Python objects it would be many times more
    (tmp_path / WORK_DIR).mkdir()
    pq.write_table(table, tmp_path / WORK_DIR / "train.parquet", row_group_size=2048)
    del table
    # Arrow allocates outside Python's allocator: count its allocations through a pool of their own.
    pool, previous = pa.proxy_memory_pool(pa.default_memory_pool()), pa.default_memory_pool()
    pa.set_memory_pool(pool)
    tracemalloc.start()
    try:
        finalise_split_formats(tmp_path, "train", NAMES)
        python_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        pa.set_memory_pool(previous)
    assert python_peak < split_bytes / 4, (python_peak, split_bytes)
    assert pool.max_memory() < split_bytes / 4, (pool.max_memory(), split_bytes)
    assert datasets.load_from_disk(str(tmp_path / "train")).num_rows == 40_000
