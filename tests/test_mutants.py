"""benchmarks/mutants.py cannot rot silently: every mutant's target text is still in its module, once, and every
mapped test file exists (the script refuses to run otherwise; this says so in the suite)."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load_mutants():
    spec = importlib.util.spec_from_file_location("mutants", ROOT / "benchmarks" / "mutants.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_mutant_still_applies_to_the_source():
    mutants = load_mutants()
    assert mutants.check_targets(ROOT) == []
    assert len(mutants.MUTANTS) >= 30 and all(m.old != m.new for m in mutants.MUTANTS)


def test_a_mutant_is_applied_to_a_copy_and_never_to_the_project(tmp_path):
    mutants = load_mutants()
    m = mutants.MUTANTS[0]
    before = (ROOT / mutants.PKG / m.module).read_text()
    copy = mutants.copy_project(tmp_path)
    assert (copy / mutants.PKG / m.module).read_text() == before and not (copy / ".venv").exists()
    assert (ROOT / mutants.PKG / m.module).read_text().count(m.old) == 1
