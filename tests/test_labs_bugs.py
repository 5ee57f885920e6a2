"""Every bug of the catalogue is caught by a default grade of the lab it belongs to."""

from __future__ import annotations

import inspect

import pytest

from teachraft import labs


def test_the_catalogue_names_at_least_nine_documented_bugs() -> None:
    assert len(labs.BUGS) >= 9
    for name, bug in labs.BUGS.items():
        assert bug.name == name and bug.title and bug.rule and bug.lab in labs.LABS
        mixin = bug.server or bug.coord
        assert mixin is not None
        methods = [v for v in vars(mixin).values() if inspect.isfunction(v)]
        assert mixin.__doc__ and all(m.__doc__ for m in methods), f"{name}: say what it breaks"


@pytest.mark.parametrize("name", sorted(labs.BUGS))
def test_the_grader_catches_the_bug_within_the_default_budget(name: str) -> None:
    bug = labs.BUGS[name]
    server, coord = labs.compose([name])
    grade = labs.grade(bug.lab, coord if bug.coord is not None else server)
    assert not grade.passed, f"{name} was not caught"
    assert "Handlers run without error" not in {c.name for c in grade.checks if not c.ok}
    assert grade.violation and grade.counterexample is not None
    assert grade.seconds < 60
