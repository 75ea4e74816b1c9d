"""Interpretation pages that tell the truth: one colour scale per run with a numeric legend, noise drawn
neutral, tokens kept whole, a position ruler, and per-class summary tracks on the index."""

import csv
import random
import re

import numpy as np
import pytest

from genomenlp.components.cli import interpret
from genomenlp.components.inference.html_report import ColourScale, SequenceSummary, noise_floor, render_sequence_page
from genomenlp.components.inference.summary_track import ClassTracks, render_track
from genomenlp.components.tokenisers import build_kmer_tokenizer

pytestmark = pytest.mark.usefixtures("one_torch_thread")
LABELS = ["promoter", "other"]
COLOUR = re.compile(r"background: rgba\((\d+), (\d+), (\d+), ([0-9.]+)\)\" title=\"(?:token \d+, bases )?[0-9-]+: "
                    r"([-0-9.e+]+)\"")


def read_tsv(path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


@pytest.fixture(scope="module")
def run(tmp_path_factory, random_classifier_folder):
    """An interpretation of six sequences (one 130 bases long) by a random 3-mer classifier."""
    root = tmp_path_factory.mktemp("pages")
    model = random_classifier_folder(root / "model", build_kmer_tokenizer(3), LABELS, 160)
    rng = random.Random(3)
    sequences = ["".join(rng.choice("ACGT") for _ in range(length)) for length in (130, 40, 41, 60, 75, 90)]
    fasta = root / "in.fa"
    fasta.write_text("".join(f">s{index}\n{sequence}\n" for index, sequence in enumerate(sequences)))
    out = root / "out"
    assert interpret.main([model, str(fasta), "-o", str(out), "-n", "16", "--no_progress"]) == 0
    return out


def test_every_page_shares_one_numeric_legend_in_attribution_units(run):
    scores = np.array([float(row["score"]) for row in read_tsv(run / "attributions.tsv")])
    limit = float(np.percentile(np.abs(scores), 99))
    pages = [run / row["page"] for row in read_tsv(run / "summary.tsv")]
    legends = {re.search(r'<div class="legend">.*?</div>', page.read_text()).group(0) for page in pages}
    legends.add(re.search(r'<div class="legend">.*?</div>', (run / "index.html").read_text()).group(0))
    assert len(legends) == 1  # one scale for the whole run, index included
    legend = legends.pop()
    assert f">{-limit:+.3g}</span>" in legend and f">{limit:+.3g}</span>" in legend and ">+0</span>" in legend
    for page in pages:
        text = page.read_text()
        assert f"full colour at |score| ≥ {limit:.3g}" in text
        drawn = COLOUR.findall(text)
        assert drawn
        for red, _, _, alpha, score in drawn:
            # Opacity is |score| / the run's limit, whatever the page's own largest score.
            assert float(alpha) == pytest.approx(min(1.0, abs(float(score)) / limit), abs=2e-3)
            assert (red == "26") == (float(score) > 0)


def test_scores_below_the_completeness_error_are_neutral():
    scale = ColourScale.of_run(np.array([3.9e-07, -1e-07, 2e-07]))
    floor = noise_floor(delta=1e-9, attribution_sum=4.9e-07, tolerance=1e-3)
    assert floor == pytest.approx(1e-3)
    # The collapsed model of the issue: its largest attribution must not be drawn saturated.
    assert scale.colour(3.9e-07, floor) == "transparent" and scale.colour(3.9e-07) != "transparent"
    assert "Every score of this sequence is below its completeness error" in scale.legend(floor)
    assert noise_floor(delta=0.05, attribution_sum=2.0, tolerance=1e-3) == 0.05
    strong = ColourScale(0.5)
    assert strong.colour(0.25, 0.01) == "rgba(26, 150, 65, 0.500)" and strong.colour(-2, 0.01).endswith("1.000)")
    assert strong.colour(0.009, 0.01) == "transparent"


def test_tokens_stay_whole_and_bases_sit_under_a_numbered_ruler(run):
    row = next(row for row in read_tsv(run / "summary.tsv") if row["record_id"] == "s0")
    page = (run / row["page"]).read_text()
    assert "break-all" not in page and ".tokens .t { display: inline-block; white-space: nowrap;" in page
    assert page.count('<span class="t"') == 128  # every 3-mer of 130 bases is one unbreakable box
    # Lines of 60 bases start at 0, 60, 120; the ruler numbers every tenth position.
    assert re.findall(r'<div class="line"><span class="n">(\d+)</span>', page) == ["0", "60", "120"]
    assert re.findall(r'<span class="c">(\d+)</span>', page) == [str(p) for p in range(0, 130, 10)]
    # The token track marks the start base of every tenth token.
    assert re.findall(r'<span class="at">(\d+)</span>', page) == [str(p) for p in range(0, 128, 10)]


def test_index_summary_track_is_the_mean_per_position_of_each_predicted_class(run):
    predicted = {row["record_id"]: row["predicted_label"] for row in read_tsv(run / "summary.tsv")}
    expected: dict[tuple[str, int], list[float]] = {}
    for row in read_tsv(run / "per_base.tsv"):
        if row["score"]:
            expected.setdefault((predicted[row["record_id"]], int(row["position"])), []).append(float(row["score"]))
    tracks = read_tsv(run / "class_tracks.tsv")
    assert {row["predicted_label"] for row in tracks} == set(predicted.values())
    for row in tracks:
        values = expected.get((row["predicted_label"], int(row["position"])), [])
        assert int(row["sequences"]) == len(values)
        if values:
            assert float(row["mean_score"]) == pytest.approx(np.mean(values), rel=1e-5, abs=1e-9)
    index = (run / "index.html").read_text()
    assert index.count("<svg") == len(set(predicted.values())) and "Summary tracks" in index
    assert not (run / ".pending_pages").exists()


def test_summary_track_handles_uneven_lengths_long_tracks_and_hostile_names():
    tracks = ClassTracks()
    tracks.add("a", np.array([1.0, np.nan, 3.0]))
    tracks.add("a", np.array([3.0, 2.0]))
    means, counts = tracks.means()["a"]
    assert means.tolist() == [2.0, 2.0, 3.0] and counts.tolist() == [2, 1, 1]
    svg = render_track("<script>x</script>", 2, np.linspace(-1, 1, 5000), np.ones(5000, int), "<b>")
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "&lt;b&gt;" in svg
    assert svg.count("<rect") <= 1 + 1000 and "bins of 5" in svg  # the noise band, then the bars


def test_page_text_stays_escaped():
    summary = SequenceSummary("<img src=x onerror=alert(1)>", "<b>f</b>", 3, 1, None, "<i>p</i>", 0.9, "<i>p</i>",
                              0.9, 0.1, 0.0, "sequences/x.html", 0.001)
    page = render_sequence_page(summary, ["<a>"], np.array([[0, 3]]), np.array([0.1]), "A<C", np.full(3, 0.1),
                                ColourScale(0.1))
    assert "<img" not in page and "<b>f" not in page and "<i>p" not in page and "<a>" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page and ">A</span>" in page and ">&lt;</span>" in page


def test_summary_track_below_the_completeness_error_is_grey_not_a_motif():
    noise = np.array([3.9e-07, -2e-07, 1e-07, 0.0])
    svg = render_track("other", 3, noise, np.full(4, 3), "other", floor=1e-3)
    assert "#1a9641" not in svg and "#d73027" not in svg and svg.count('fill="#9a9a9a"') == 3
    assert "+0.001</text>" in svg  # the axis spans the completeness error, so noise stays small
    signal = render_track("promoter", 3, np.array([0.5, -0.2, 1e-4]), np.full(3, 3), "promoter", floor=1e-3)
    assert signal.count('fill="#1a9641"') == 1 and signal.count('fill="#d73027"') == 1
    assert signal.count('fill="#9a9a9a"') == 1
