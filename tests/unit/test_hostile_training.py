"""train on hostile data and folders: every problem is one line before training, nothing replaced unasked."""

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from genomenlp.components.cli import kmerise, train
from genomenlp.components.errors import InputError
from genomenlp.components.training.config import ModelConfig, TrainConfig
from genomenlp.components.training.run import train_classifier

TINY = ["--num_train_epochs", "1", "--num_layers", "1", "--hidden_size", "16", "--num_heads", "2",
        "--intermediate_size", "32", "--no_progress", "-d", "cpu"]
TINY_MODEL = ModelConfig(num_layers=1, hidden_size=16, num_heads=2, intermediate_size=32, max_positions=64)
TINY_TRAINING = TrainConfig(num_train_epochs=2, per_device_train_batch_size=16, learning_rate=3e-3, seed=3)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class Interrupt(Exception):
    pass


def copy_dataset(tiny_dataset, folder: Path, change=None, manifest: bool = False) -> Path:
    """The tiny dataset's parquet splits in ``folder``, ``change(split_name, frame)`` applied, no manifest."""
    source = Path(tiny_dataset.train_path).parent
    folder.mkdir()
    for split in ("train", "test", "valid"):
        frame = pd.read_parquet(source / f"{split}.parquet")
        if change:
            frame = change(split, frame)
        frame.to_parquet(folder / f"{split}.parquet")
    if manifest:
        shutil.copy(source / "manifest.json", folder)
    return folder / "train.parquet"


def run_train(train_path, tokeniser, out, capsys, *extra) -> tuple[int, str]:
    code = train.main([str(train_path), "parquet", str(tokeniser), "-o", str(out), *TINY, *extra])
    return code, capsys.readouterr().err


def assert_one_line(code, error, *fragments):
    assert code == 2, error
    assert "Traceback" not in error and len(error.strip().splitlines()) == 1, error
    for fragment in fragments:
        assert fragment in error, error


def _set_first(column, value):
    def change(split, frame):
        if split == "train":
            frame = frame.copy()
            if column == "input_ids":
                ids = list(frame.at[0, "input_ids"])
                ids[1] = value
                frame.at[0, "input_ids"] = ids
                frame = frame.drop(columns=["feature"])
            else:
                frame.loc[0, column] = value
        return frame
    return change


@pytest.mark.parametrize(("change", "fragments"), [
    (_set_first("input_ids", 10_000), ["token id 10000", "vocabulary", "row 0"]),
    (_set_first("labels", -1), ["label -1 is not a class id", "row 0"]),
    (lambda split, frame: frame.assign(labels=0) if split == "train" else frame, ["holds one class"]),
])
def test_bad_rows_are_refused_before_training(tiny_dataset, tmp_path, capsys, change, fragments):
    train_path = copy_dataset(tiny_dataset, tmp_path / "data", change)
    code, error = run_train(train_path, tiny_dataset.tokenizer_path, tmp_path / "out", capsys)
    assert_one_line(code, error, *fragments)
    assert not (tmp_path / "out").exists()


def test_rows_longer_than_max_positions_are_one_line(tiny_dataset, tmp_path, capsys):
    code, error = run_train(tiny_dataset.train_path, tiny_dataset.tokenizer_path, tmp_path / "out", capsys,
                            "--max_positions", "16")
    assert_one_line(code, error, "--max_positions 16", "--max_tokens")
    assert not (tmp_path / "out").exists()


def test_tokeniser_of_another_k_is_refused_without_a_manifest(tiny_dataset, tmp_path, capsys):
    train_path = copy_dataset(tiny_dataset, tmp_path / "data")
    other = tmp_path / "k4.json"
    fasta = str(Path(tiny_dataset.tokenizer_path).with_name("without.fa"))
    assert kmerise.main(["-i", fasta, "-k", "4", "-t", str(other)]) == 0
    code, error = run_train(train_path, other, tmp_path / "out", capsys)
    assert_one_line(code, error, "is not the tokeniser", "tokenizer.json")


def test_a_folder_of_other_files_is_not_replaced_without_overwrite(tiny_dataset, tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "report.html").write_text("<p>my report</p>")
    (out / "history.csv").write_text("epoch\n1\n")
    code, error = run_train(tiny_dataset.train_path, tiny_dataset.tokenizer_path, out, capsys)
    assert_one_line(code, error, "--overwrite", "not empty")
    assert (out / "report.html").read_text() == "<p>my report</p>" and sorted(p.name for p in out.iterdir()) == [
        "history.csv", "report.html"]


@pytest.mark.parametrize("kind", ["file", "symlink", "dot"])
def test_overwrite_of_a_file_a_link_or_the_current_folder_is_refused_with_a_reason(tiny_dataset, tmp_path, capsys,
                                                                                   monkeypatch, kind):
    target = tmp_path / "target"
    if kind == "file":
        target.write_text("keep me")
        reason = "is a file"
    elif kind == "symlink":
        (tmp_path / "real").mkdir()
        (tmp_path / "real" / "metrics.json").write_text("{}")
        target.symlink_to(tmp_path / "real")
        reason = "symbolic link"
    else:
        target.mkdir()
        (target / "metrics.json").write_text("{}")
        monkeypatch.chdir(target)
        target = Path(".")
        reason = "current folder"
    code, error = run_train(tiny_dataset.train_path, tiny_dataset.tokenizer_path, target, capsys, "--overwrite")
    assert_one_line(code, error, reason)
    assert not list(tmp_path.glob(".*.old"))


def _interrupted_run(tiny_dataset, out):
    def stop(epoch, row):
        raise Interrupt

    with pytest.raises(Interrupt):
        train_classifier(tiny_dataset, TINY_MODEL, TINY_TRAINING, str(out), show_progress=False, on_epoch=stop,
                         with_baselines=False)
    return out / "checkpoints"


def test_truncated_checkpoint_state_is_one_line_saying_what_to_do(tiny_dataset, tmp_path):
    checkpoints = _interrupted_run(tiny_dataset, tmp_path / "run")
    state = checkpoints / "state.json"
    state.write_text(state.read_text()[:20])
    with pytest.raises(InputError, match="cannot be read.*--overwrite.*delete") as caught:
        train_classifier(tiny_dataset, TINY_MODEL, TINY_TRAINING, str(tmp_path / "run"), show_progress=False)
    assert "\n" not in str(caught.value)


class Payload:
    def __reduce__(self):
        return (print, ("pickled code ran",))


def test_a_pickle_in_optimizer_state_is_refused_not_run(tiny_dataset, tmp_path, capsys):
    import pickle

    checkpoints = _interrupted_run(tiny_dataset, tmp_path / "run")
    # Trainer keeps the optimiser state in the checkpoint folder the resume record names.
    (next(checkpoints.glob("checkpoint-*")) / "optimizer.pt").write_bytes(pickle.dumps({"optimizer": Payload()},
                                                                                       protocol=2))
    with pytest.raises(InputError, match="cannot be read"):
        train_classifier(tiny_dataset, TINY_MODEL, TINY_TRAINING, str(tmp_path / "run"), show_progress=False)
    assert "pickled code ran" not in capsys.readouterr().out


def test_overwrite_replaces_a_finished_run(tiny_dataset, tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "metrics.json").write_text(json.dumps({"old": True}))
    code, error = run_train(tiny_dataset.train_path, tiny_dataset.tokenizer_path, out, capsys, "--overwrite")
    assert code == 0, error
    assert "old" not in json.loads((out / "metrics.json").read_text())
    # predict flags inputs shorter than the training records: the model keeps their lengths.
    lengths = json.loads((out / "model_files" / "genomenlp.json").read_text())["record_lengths"]
    assert lengths["train_min"] == 40
