"""``--max_record_length`` on every command that reads FASTA: a longer record is refused by name, one line."""

from pathlib import Path

import pytest

from genomenlp.components.cli import create_dataset, kmerise, tokenise

SHORT = ">short\n" + "ACGT" * 10 + "\n"
LONG = ">too_long\n" + "ACGTTGCA" * 40 + "\n"  # 320 bases


def fasta(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def one_line_refusal(capsys, prog: str) -> str:
    error = capsys.readouterr().err.strip()
    assert error.startswith(f"{prog}: error: ")
    assert "\n" not in error and "Traceback" not in error
    return error


def test_tokenise_bio_refuses_a_record_over_the_limit_naming_it(tmp_path, capsys):
    data = fasta(tmp_path, "a.fa", SHORT * 20 + LONG)
    out = tmp_path / "t.json"
    assert tokenise.main(["-i", data, "-t", str(out), "-v", "30", "--max_record_length", "100",
                          "--no_progress"]) == 2
    error = one_line_refusal(capsys, "tokenise_bio")
    assert "too_long" in error and "--max_record_length 100" in error
    assert not out.exists()


def test_tokenise_bio_accepts_the_same_record_under_a_higher_limit(tmp_path, capsys):
    data = fasta(tmp_path, "a.fa", SHORT * 20 + LONG)
    out = tmp_path / "t.json"
    assert tokenise.main(["-i", data, "-t", str(out), "-v", "30", "--max_record_length", "320",
                          "--no_progress"]) == 0
    assert out.is_file()


@pytest.mark.parametrize("outputs", [["-t", "k.json"], ["-o", "data"]], ids=["tokeniser", "dataset"])
def test_kmerise_bio_refuses_a_record_over_the_limit_naming_it(tmp_path, capsys, outputs):
    first = fasta(tmp_path, "a.fa", SHORT * 20)
    second = fasta(tmp_path, "b.fa", SHORT * 19 + LONG)
    flag, target = outputs
    argv = ["-i", first, second, "-k", "3", flag, str(tmp_path / target), "--max_record_length", "100", "--no_progress"]
    assert kmerise.main(argv) == 2
    error = one_line_refusal(capsys, "kmerise_bio")
    assert "too_long" in error and "--max_record_length 100" in error
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.fa", "b.fa"]


@pytest.mark.parametrize("main, argv", [
    (tokenise.main, ["-i", "IN", "-t", "OUT"]),
    (kmerise.main, ["-i", "IN", "-t", "OUT"]),
    (create_dataset.main, ["IN", "IN", "TOKENS", "-o", "OUT"]),
], ids=["tokenise_bio", "kmerise_bio", "create_dataset_bio"])
def test_a_non_positive_limit_is_one_line(tmp_path, capsys, main, argv):
    data = fasta(tmp_path, "a.fa", SHORT)
    names = {"IN": data, "OUT": str(tmp_path / "out"), "TOKENS": str(tmp_path / "missing.json")}
    assert main([names.get(arg, arg) for arg in argv] + ["--max_record_length", "0"]) == 2
    assert "--max_record_length: must be a positive number of bases" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
