"""Encode rows and write each split as parquet, csv, json and a ``save_to_disk`` folder."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

from genomenlp.components.dataset.publish import WORK_DIR, publish_split


def _schema():
    import pyarrow as pa

    return pa.schema(
        [
            ("idx", pa.int64()),
            ("feature", pa.string()),
            ("labels", pa.int64()),
            ("input_ids", pa.list_(pa.int32())),
            ("token_type_ids", pa.list_(pa.int8())),
            ("attention_mask", pa.list_(pa.int8())),
            ("record_id", pa.string()),
            ("parent", pa.int64()),
            ("strand", pa.string()),
            ("start", pa.int64()),
            ("end", pa.int64()),
        ]
    )


class SplitWriter:
    """Appends encoded rows of one split to a working parquet file, batch by batch."""

    def __init__(self, out_dir, split: str, tokenizer, max_tokens: int | None) -> None:
        self.path = Path(out_dir, WORK_DIR, f"{split}.parquet")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tokenizer = tokenizer
        self.max_tokens = max_tokens
        self.rows = 0
        self.truncated = 0
        self.per_label: Counter = Counter()
        self.sample: dict | None = None
        self._writer = None

    def write(self, rows: list) -> None:
        """Encode and append rows (an empty list is fine)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        if not rows:
            return
        encodings = self.tokenizer.encode_batch([row.feature for row in rows], self.max_tokens)
        columns = {
            "idx": list(range(self.rows, self.rows + len(rows))),
            "feature": [row.feature for row in rows],
            "labels": [row.label for row in rows],
            "input_ids": [encoding.ids for encoding in encodings],
            "token_type_ids": [encoding.type_ids for encoding in encodings],
            "attention_mask": [encoding.attention_mask for encoding in encodings],
            "record_id": [row.record_id for row in rows],
            "parent": [row.parent for row in rows],
            "strand": [row.strand for row in rows],
            "start": [row.start for row in rows],
            "end": [row.end for row in rows],
        }
        if self.sample is None:
            self.sample = {
                "record_id": rows[0].record_id,
                "feature": rows[0].feature,
                "tokens": encodings[0].tokens,
                "input_ids": encodings[0].ids,
            }
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.path, _schema())
        self._writer.write_table(pa.Table.from_pydict(columns, schema=_schema()))
        self.rows += len(rows)
        self.per_label.update(row.label for row in rows)
        # Rows cut at max_tokens: the model never sees their end, so the summary says how many.
        self.truncated += sum(bool(encoding.overflowing) for encoding in encodings)

    def close(self) -> Counter:
        """Finish the file (an empty split gets an empty table) and return rows per label."""
        import pyarrow.parquet as pq

        if self._writer is None:
            pq.write_table(_schema().empty_table(), self.path)
        else:
            self._writer.close()
        return self.per_label


def finalise_split_formats(out_dir, split: str, label_names: list[str]) -> None:
    """Turn a split's working parquet into the four published formats, labels as class names.

    Streams the working file batch by batch (see :mod:`genomenlp.components.dataset.publish`), so memory does
    not grow with the split.
    """
    publish_split(out_dir, split, label_names)


def remove_work_dir(out_dir) -> None:
    """Delete the working files once every split is published."""
    shutil.rmtree(Path(out_dir, WORK_DIR), ignore_errors=True)
