import gzip
import tracemalloc

import pytest

from components.errors import InputError
from components.fasta import Alphabet, read_fasta


def write(path, data: bytes):
    path.write_bytes(data)
    return path


def records(path, alphabet=Alphabet.DNA):
    return [(r.id, r.sequence) for r in read_fasta(path, alphabet)]


def test_crlf_without_final_newline(tmp_path):
    path = write(tmp_path / "a.fa", b">s1 first\r\nACGT\r\n>s2\r\nGGCC")
    assert records(path) == [("s1", "ACGT"), ("s2", "GGCC")]


def test_lone_carriage_returns_multiline_blank_lines_and_lower_case(tmp_path):
    path = write(tmp_path / "a.fa", b">s1\racg\r\rtna\n\n>s2 desc here\nAC\n  GT \n\n")
    got = list(read_fasta(path))
    assert [(r.id, r.sequence) for r in got] == [("s1", "ACGTNA"), ("s2", "ACGT")]
    assert got[1].description == "desc here"
    assert got[1].line == 6


def test_gzip_detected_by_magic_bytes_not_name(tmp_path):
    zipped = write(tmp_path / "plain_name.fasta", gzip.compress(b">x\nACGT\n"))
    plain = write(tmp_path / "looks_zipped.fa.gz", b">y\nTTTT\n")
    assert records(zipped) == [("x", "ACGT")]
    assert records(plain) == [("y", "TTTT")]


def test_iupac_and_rna_letters_kept(tmp_path):
    path = write(tmp_path / "a.fa", b">iupac\nACGTRYSWKMBDHVN\n>rna\nacgu\n")
    assert records(path) == [("iupac", "ACGTRYSWKMBDHVN"), ("rna", "ACGU")]


def test_protein_mode(tmp_path):
    path = write(tmp_path / "p.fa", b">p1\nMKTAYIAKQR\n")
    assert records(path, Alphabet.PROTEIN) == [("p1", "MKTAYIAKQR")]
    with pytest.raises(InputError, match="'I' at position 6"):
        records(path)


def test_header_kept_verbatim(tmp_path):
    path = write(tmp_path / "a.fa", ">../../etc/passwd <script>x</script> ünï\nACGT\n".encode())
    record = next(read_fasta(path))
    assert record.id == "../../etc/passwd"
    assert record.description == "<script>x</script> ünï"


def test_block_boundary_inside_crlf(tmp_path, monkeypatch):
    import components.fasta as fasta

    monkeypatch.setattr(fasta, "_READ_BLOCK", 3)
    path = write(tmp_path / "a.fa", b">a\r\nAC\r\nGT\r\n>b\r\nTT")
    assert records(path) == [("a", "ACGT"), ("b", "TT")]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty file"),
        (b"\n\r\n  \n", "no FASTA records"),
        (b"hello\n>a\nACGT\n", "line 1: text before the first '>' header"),
        (b">a\nACGT\n>b\nACXT\n", "record 2 'b' \\(line 3\\): character 'X' at position 3"),
        (b">a\n\n>b\nACGT\n", "record 1 'a' \\(line 1\\): has no sequence"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe", "binary data"),
        (b">a\nAC\x00GT\n", "NUL bytes"),
        (b"BZh91AY&SY", "bzip2-compressed"),
    ],
)
def test_bad_input_names_file_and_problem(tmp_path, content, message):
    path = write(tmp_path / "bad.fa", content)
    with pytest.raises(InputError, match=message) as caught:
        list(read_fasta(path))
    text = str(caught.value)
    assert text.startswith(str(path))
    assert "\n" not in text


def test_truncated_gzip(tmp_path):
    whole = gzip.compress(b">a\n" + b"ACGT" * 5000 + b"\n")
    path = write(tmp_path / "cut.fa.gz", whole[: len(whole) // 2])
    with pytest.raises(InputError, match="truncated gzip"):
        list(read_fasta(path))


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        list(read_fasta(tmp_path / "absent.fa"))


def peak_memory_reading(path):
    tracemalloc.start()
    count = sum(1 for _ in read_fasta(path))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return count, peak


def test_memory_does_not_grow_with_file_size(tmp_path):
    peaks = []
    for count in (500, 4000):  # 2.5 MB and 20 MB of sequence
        path = tmp_path / f"big{count}.fa.gz"
        with gzip.open(path, "wb", compresslevel=1) as out:
            for index in range(count):
                out.write(b">r%d\n" % index + (b"ACGTTGCA" * 625 + b"\n"))
        read, peak = peak_memory_reading(path)
        assert read == count
        peaks.append(peak)
    assert peaks[1] < 1.5 * peaks[0]
