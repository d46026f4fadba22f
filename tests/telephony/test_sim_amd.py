"""The simulator's number rules for answering-machine detection: ``answered_by`` and
``beep_after_s``, checked when the rules file is read."""

from __future__ import annotations

from pathlib import Path

import pytest

from ringback.telephony.sim_rules import SimConfigError, load_sim_rules


def test_a_rule_says_who_answers_and_when_the_beep_ends_and_defaults_are_human(
    tmp_path: Path,
) -> None:
    path = tmp_path / "rules.toml"
    path.write_text('[[rules]]\nsuffix = "77"\nanswered_by = "machine"\nbeep_after_s = 4.0\n')
    rules = load_sim_rules(path)
    machine = rules.behaviour_for("+3361234577")
    assert (machine.answered_by, machine.beep_after_s) == ("machine", 4.0)
    other = rules.behaviour_for("+33612345")
    assert (other.answered_by, other.beep_after_s) == ("human", None)


@pytest.mark.parametrize(
    ("line", "problem"),
    [('answered_by = "robot"', "answered_by must be one of human, machine, unknown"),
     ("beep_after_s = -1", "beep_after_s must be between 0")],
)  # fmt: skip
def test_a_wrong_amd_setting_names_the_rule_and_the_key(
    tmp_path: Path, line: str, problem: str
) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(f'[[rules]]\nsuffix = "77"\n{line}\n')
    with pytest.raises(SimConfigError, match="#1") as caught:
        load_sim_rules(path)
    assert problem in str(caught.value)
