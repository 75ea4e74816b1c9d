import gzip
import tracemalloc
import zlib

import pytest

from genomenlp.components.errors import InputError
from genomenlp.components.fasta import Alphabet, read_fasta


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
    import genomenlp.components.fasta as fasta

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


def test_first_wrong_letter_reported_where_it_is(tmp_path):
    # Digits sort before letters; the first wrong character in the record is the one reported.
    path = write(tmp_path / "d.fa", b">a\nACGT\nAC GTX\nGG1T\n")
    with pytest.raises(InputError, match=r"'X' at position 9 \(line 3, column 6\)"):
        list(read_fasta(path))
    path = write(tmp_path / "e.fa", b">a\nACGT\nGG1T\n")
    with pytest.raises(InputError, match=r"'1' at position 7 \(line 3, column 3\)"):
        list(read_fasta(path))


def test_cp1252_header_is_not_called_binary(tmp_path):
    path = write(tmp_path / "w.fa", ">a\nACGT\n>caf\xe9 promoter\nACGT\n".encode("cp1252"))
    with pytest.raises(InputError, match="line 3: byte 0xe9 is not UTF-8.*cp1252") as caught:
        list(read_fasta(path))
    assert "binary" not in str(caught.value)


def test_long_single_line_is_read_in_linear_time(tmp_path, monkeypatch):
    import time

    import genomenlp.components.fasta as fasta

    monkeypatch.setattr(fasta, "_READ_BLOCK", 1 << 12)
    timings = []
    for size in (1 << 20, 1 << 22):
        path = write(tmp_path / f"{size}.fa", b">long\n" + b"ACGT" * (size // 4) + b"\n>b\nAC\n")
        started = time.perf_counter()
        lengths = [len(record.sequence) for record in read_fasta(path)]
        timings.append(time.perf_counter() - started)
        assert lengths == [size, 2]
    # Quadratic reading took 16× as long for 4× the bases; linear takes about 4×.
    assert timings[1] < 8 * timings[0] + 0.05


def test_record_longer_than_the_limit_is_refused_by_name(tmp_path):
    from genomenlp.components.fasta import record_length_limit

    path = write(tmp_path / "l.fa", b">short\nACGT\n>chr_big\n" + b"A" * 5000 + b"\n")
    with pytest.raises(InputError, match=r"record 2 'chr_big'.*longer than --max_record_length 1,000"):
        list(read_fasta(path, max_record_length=1000))
    with record_length_limit(1000), pytest.raises(InputError, match="max_record_length"):
        list(read_fasta(path))
    assert len(list(read_fasta(path))) == 2


def test_gzip_bomb_refused_early_with_bounded_memory(tmp_path, monkeypatch):
    import genomenlp.components.fasta as fasta

    monkeypatch.setattr(fasta, "GZIP_RATIO_FLOOR", 1 << 20)
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = b"A" * (1 << 20)
    data = compressor.compress(b">bomb\n") + b"".join(compressor.compress(chunk) for _ in range(64))
    path = write(tmp_path / "bomb.fa.gz", data + compressor.flush())
    with pytest.raises(InputError, match="decompression bomb"):
        list(read_fasta(path))
    # Ordinary gzip FASTA (ratio 3-4) is untouched by the cap.
    import random

    bases = "".join(random.Random(0).choices("ACGT", k=3_000_000)).encode()
    normal = write(tmp_path / "ok.fa.gz", gzip.compress(b">a\n" + bases + b"\n"))
    assert len(next(read_fasta(normal)).sequence) == 3_000_000


def test_header_split_across_blocks(tmp_path, monkeypatch):
    import genomenlp.components.fasta as fasta

    monkeypatch.setattr(fasta, "_READ_BLOCK", 5)
    path = write(tmp_path / "h.fa", b">a_long_identifier some description\nACGT\n>b\nGG")
    assert [(r.id, r.description, r.sequence) for r in read_fasta(path)] == [
        ("a_long_identifier", "some description", "ACGT"), ("b", "", "GG")]
