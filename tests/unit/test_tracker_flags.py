"""The hosted tracker's flags: notes for the ones with no effect, and what a wandb tracker is handed."""

from genomenlp.components.cli import sweep, train
from genomenlp.components.cli.tracking import tracking_notes, tracking_tags
from genomenlp.steps.support.tracking import wandb_init_arguments

DATA = ["data/train.parquet", "parquet", "tokens.json"]


def test_resume_sweep_and_wandb_off_are_accepted_with_a_note():
    args = sweep.build_parser().parse_args([*DATA, "-w", "sweep.json", "-r", "p9do3gzl", "--wandb_off", "-o", "out"])
    notes = tracking_notes(args, "sweep")
    assert notes == ["sweep: note: --wandb_off has no effect: nothing is sent to a hosted tracker",
                     "sweep: note: --resume_sweep p9do3gzl has no effect: the study kept in out/study.db is "
                     "continued when there is one"]


def test_each_command_has_the_originals_default_group():
    assert tracking_tags(train.build_parser().parse_args(DATA)) == {"group_name": "train"}
    assert tracking_tags(sweep.build_parser().parse_args([*DATA, "-w", "s.json"])) == {"group_name": "sweep"}


def test_wandb_gets_the_flags_and_falls_back_to_the_trackers_own_entity_and_project():
    given = {"entity_name": "tyagilab", "project_name": "testm3", "group_name": "train"}
    arguments = wandb_init_arguments("train", given, {"learning_rate": 0.01}, "stack_team", "stack_project")
    assert arguments == {"entity": "tyagilab", "project": "testm3", "group": "train", "job_type": "train",
                         "tags": ["entity:tyagilab", "project:testm3", "group:train"],
                         "config": {"learning_rate": 0.01}}
    fallback = wandb_init_arguments("cross_validate", {"group_name": "crossval"}, {}, "stack_team", "stack_project")
    assert (fallback["entity"], fallback["project"], fallback["tags"]) == ("stack_team", "stack_project",
                                                                          ["group:crossval"])
