"""pretrain on a damaged checkpoint or someone else's folder: one line, nothing replaced unasked."""

import random

import pytest

from genomenlp.components.errors import InputError
from genomenlp.components.pretraining.config import PretrainConfig
from genomenlp.components.pretraining.mlm import pretrain_encoder
from genomenlp.components.tokenisers import build_kmer_tokenizer
from genomenlp.components.training.config import ModelConfig

TINY_MODEL = ModelConfig(num_layers=1, hidden_size=16, num_heads=2, intermediate_size=32, max_positions=64)
TINY = PretrainConfig(max_steps=4, per_device_train_batch_size=8, logging_steps=2, checkpoint_every=2,
                      learning_rate=3e-3, shuffle_buffer=32, seed=3, device="cpu")

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class Interrupt(Exception):
    pass


@pytest.fixture(scope="module")
def genome(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile_genome")
    path = folder / "genome.fa"
    path.write_text(">chr1\n" + "".join(random.Random(5).choices("ACGT", k=3000)) + "\n")
    tokens = folder / "k3.json"
    tokens.write_text(build_kmer_tokenizer(3).to_json())
    return str(path), str(tokens)


def test_truncated_pretraining_checkpoint_is_one_line(genome, tmp_path):
    def stop(step, row):
        raise Interrupt

    out = tmp_path / "run"
    with pytest.raises(Interrupt):
        pretrain_encoder([genome[0]], genome[1], str(out), TINY_MODEL, TINY, show_progress=False, on_log=stop)
    state = out / "checkpoints" / "state.json"
    state.write_text(state.read_text()[:15])
    with pytest.raises(InputError, match="cannot be read.*--overwrite") as caught:
        pretrain_encoder([genome[0]], genome[1], str(out), TINY_MODEL, TINY, show_progress=False)
    assert "\n" not in str(caught.value)


def test_a_folder_of_other_files_is_refused(genome, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="not empty"):
        pretrain_encoder([genome[0]], genome[1], str(out), TINY_MODEL, TINY, show_progress=False)
    assert (out / "notes.txt").read_text() == "mine"
