import ast
import random

import pytest

from mtpeft.tasks import SOURCES
from mtpeft.tasks.builders.mutations import MUTATIONS, seed_bug
from mtpeft.tasks.readers.base import ALL
from tests.conftest import documented_functions

FUNCTION = ast.unparse(ast.parse('''
def clamp(value, low, high):
    total = value - low
    if value < low:
        return low
    if value > high:
        return high
    return value + total * 2
'''))


@pytest.mark.parametrize("kind", sorted(MUTATIONS))
def test_every_mutation_changes_one_thing_and_stays_valid(kind):
    tree = ast.parse(FUNCTION)
    sites = MUTATIONS[kind](tree.body[0])
    assert sites, f"{kind} found nothing to mutate"
    sites[0](random.Random(0))
    mutated = ast.unparse(tree)
    assert mutated != FUNCTION
    ast.parse(mutated)
    changed = [a for a, b in zip(FUNCTION.splitlines(), mutated.splitlines(), strict=True) if a != b]
    assert len(changed) == 1


def test_seed_bug_is_deterministic():
    assert seed_bug(FUNCTION, random.Random(3)) == seed_bug(FUNCTION, random.Random(3))
    assert seed_bug("def f():\n    pass", random.Random(0)) is None


@pytest.fixture(scope="module")
def source_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("src")
    body = documented_functions(30, "Return the items of group {i} that stay below the limit given.")
    (root / "module_a.py").write_text(body)
    (root / "module_b.py").write_text(body.replace("function_", "other_").replace("group", "batch"))
    (root / "test_skip.py").write_text(body)  # test files are skipped
    return root


def test_search_builder_schema(source_dir, tmp_path):
    from mtpeft.data_stats import build_search_file

    out = tmp_path / "search.jsonl"
    assert build_search_file(source_dir, out) == 60
    (example, *_) = SOURCES.get("csn").read(out)[ALL]
    assert example.text.startswith("Return the items of group")
    assert '"""' not in example.text_pair and "kept.append" in example.text_pair


def test_bug_builder_labels_by_construction(source_dir):
    first = SOURCES.get("stdlib-bug").read(source_dir, seed=1)[ALL]
    again = SOURCES.get("stdlib-bug").read(source_dir, seed=1)[ALL]
    assert [(e.text, e.label) for e in first] == [(e.text, e.label) for e in again]
    assert 10 < sum(e.label for e in first) < 50
    assert all(e.meta.get("mutation") for e in first if e.label == 1)
    assert {e.group for e in first} == {"module_a.py", "module_b.py"}


def test_docstring_mismatch_builder(source_dir):
    examples = SOURCES.get("stdlib-docstring").read(source_dir, seed=0)[ALL]
    mismatched = [e for e in examples if e.label == 1]
    assert 10 < len(mismatched) < 50
    for e in mismatched:  # the docstring came from the other file, and says so
        assert e.meta["docstring_from"].split(":")[0] != e.group
        assert ("batch" in e.text) == (e.group == "module_a.py")
    for e in examples:
        if e.label == 0:
            assert ("group" in e.text) == (e.group == "module_a.py")


def test_name_mismatch_builder_renames_only_the_definition(source_dir):
    examples = SOURCES.get("stdlib-name").read(source_dir, seed=0)[ALL]
    renamed = [e for e in examples if e.label == 1]
    assert 10 < len(renamed) < 50
    for e in renamed:
        defined = ast.parse(e.text).body[0].name
        original = e.id.rsplit(":", 1)[-1]
        assert defined != original and original not in e.text
        assert defined.split("_")[0] != original.split("_")[0]  # taken from the other file
