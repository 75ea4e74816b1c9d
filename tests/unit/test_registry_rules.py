import pytest

from genomenlp.components.errors import InputError
from genomenlp.components.registry import Candidate, RegistryReference, choose_production, parse_reference


def test_parse_reference_forms():
    assert parse_reference("genomic_bert") == RegistryReference("genomic_bert", None)
    assert parse_reference("genomic_bert@3") == RegistryReference("genomic_bert", "3")
    assert parse_reference("genomic_bert@production") == RegistryReference("genomic_bert", "production")
    for bad in ("../x", "name@nightly", "", "a b"):
        with pytest.raises(InputError):
            parse_reference(bad)


def test_first_model_that_beats_the_baseline_is_promoted():
    assert choose_production([Candidate(1, 0.70, 0.60)]) == 1


def test_nothing_qualifies_without_beating_a_known_baseline():
    assert choose_production([]) is None
    assert choose_production([Candidate(1, 0.55, 0.60), Candidate(2, 0.9, None), Candidate(3, None, 0.5)]) is None
    assert choose_production([Candidate(1, 0.61, 0.60)], margin=0.035) is None


def test_best_score_wins_and_ties_go_to_the_newer_version():
    candidates = [Candidate(1, 0.70, 0.6), Candidate(2, 0.75, 0.6), Candidate(3, 0.75, 0.6), Candidate(4, 0.9, 0.95)]
    assert choose_production(candidates) == 3


def test_current_holder_keeps_the_stage_unless_strictly_beaten():
    candidates = [Candidate(1, 0.75, 0.6), Candidate(2, 0.75, 0.6)]
    assert choose_production(candidates, current=1) == 1
    assert choose_production([*candidates, Candidate(3, 0.76, 0.6)], current=1) == 3
