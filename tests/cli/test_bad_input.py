"""Bad input: one line naming the file, record and problem; exit status 2; nothing written."""

import gzip
import random
import subprocess
import sys
from pathlib import Path

import pytest

from genomenlp.components.cli import create_dataset, kmerise, tokenise

_RNG = random.Random(0)
GOOD = b">a\nACGTACGTAC\n>b\nTTGACAGGCA\n"
BAD_FILES = {
    "empty": (b"", "empty file"),
    "blank_only": (b"\n\n", "no FASTA records"),
    "text_before_header": (b"sequence follows\n>a\nACGT\n", "line 1: text before the first '>' header"),
    "not_sequence_letters": (b">a\nACGT\n>b\nAC!GT\n", "record 2 'b' (line 3): character '!' at position 3"),
    "truncated_gzip": (
        gzip.compress(b">a\n" + bytes(_RNG.choice(b"ACGT") for _ in range(20000)))[:2000],
        "damaged or truncated gzip",
    ),
    "binary": (bytes(range(256)) * 4, "binary data"),
}


def write(path: Path, content: bytes) -> str:
    path.write_bytes(content)
    return str(path)


@pytest.fixture
def tokens(tmp_path):
    path = tmp_path / "k.json"
    assert kmerise.main(["-i", write(tmp_path / "good.fa", GOOD), "-k", "2", "-t", str(path)]) == 0
    return str(path)


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_create_dataset_bio_rejects(case, tmp_path, tokens, capsys):
    content, message = BAD_FILES[case]
    bad = write(tmp_path / "bad.fa", content)
    good = write(tmp_path / "good.fa", GOOD)
    out = tmp_path / "out"
    assert create_dataset.main([good, bad, tokens, "-o", str(out), "--no_progress"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith(f"create_dataset_bio: error: {bad}")
    assert message in error
    assert "\n" not in error
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.fa", "good.fa", "k.json"]


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_tokenise_bio_rejects(case, tmp_path, capsys):
    content, message = BAD_FILES[case]
    bad = write(tmp_path / "bad.fa", content)
    assert tokenise.main(["-i", bad, "-t", str(tmp_path / "t.json"), "--no_progress"]) == 2
    error = capsys.readouterr().err.strip()
    assert message in error and "\n" not in error
    assert not (tmp_path / "t.json").exists()


def test_argument_mistakes_are_one_line(tmp_path, tokens, capsys):
    good = write(tmp_path / "good.fa", GOOD)
    other = write(tmp_path / "other.fa", GOOD)
    assert create_dataset.main([good, other, tokens, "-o", str(tmp_path / "o"), "--split_train", "0.5"]) == 2
    assert "must be 1" in capsys.readouterr().err
    assert create_dataset.main([good, tokens, "-o", str(tmp_path / "o")]) == 2
    assert "at least two FASTA files" in capsys.readouterr().err
    assert create_dataset.main([good, other, good, "-o", str(tmp_path / "o")]) == 2
    assert "not a tokenizers JSON file" in capsys.readouterr().err
    assert create_dataset.main([good, other, tokens, "-o", str(tmp_path / "o"), "--labels", "x"]) == 2
    assert "1 labels for 2 files" in capsys.readouterr().err
    assert kmerise.main(["-i", good, "-k", "3", "-s", "4", "-t", str(tmp_path / "x.json")]) == 2
    assert "stride (4) must not exceed k (3)" in capsys.readouterr().err
    assert not (tmp_path / "o").exists() and not (tmp_path / "x.json").exists()


def test_failure_late_in_the_second_file_leaves_nothing_behind(tmp_path, tokens):
    good = write(tmp_path / "good.fa", GOOD * 50)
    late_bad = write(tmp_path / "late.fa", GOOD * 50 + b">z\nACGTZ\n")
    assert create_dataset.main([good, late_bad, tokens, "-o", str(tmp_path / "out"), "--no_progress"]) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good.fa", "k.json", "late.fa"]


def test_installed_command_prints_no_traceback(tmp_path):
    bad = write(tmp_path / "bad.fa", b"")
    command = Path(sys.executable).with_name("tokenise_bio")
    result = subprocess.run(
        [str(command), "-i", bad, "-t", str(tmp_path / "t.json")], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip() == f"tokenise_bio: error: {bad}: empty file: no FASTA records"
