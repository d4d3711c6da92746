"""The mutation check's list stays true to the code: every planted bug still finds its original
text exactly once, and names tests that exist (running the mutants is on demand: tools/mutants.py)."""

import pytest

from conftest import REPO
from tools.mutants import MUTANTS


@pytest.mark.parametrize("mutant", MUTANTS, ids=[m.name for m in MUTANTS])
def test_each_mutant_still_applies_and_names_existing_tests(mutant):
    assert (REPO / mutant.file).read_text().count(mutant.original) == 1
    assert mutant.mutated != mutant.original
    for test in mutant.tests:
        path, _, name = test.partition("::")
        assert (REPO / path).is_file(), test
        assert not name or f"def {name}(" in (REPO / path).read_text(), test


def test_mutant_names_are_unique():
    assert len({m.name for m in MUTANTS}) == len(MUTANTS)
