"""Generation sources: CodeXGLUE line pairs on the real files in ../shared/datasets, Methods2Test,
code summarization from Python source and CodeSearchNet, and a generation task loaded end to end."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from mtpeft.config import config_from_dict
from mtpeft.errors import DataError
from mtpeft.tasks import SOURCES, TaskKind, load_task
from mtpeft.tasks.readers.base import ALL
from mtpeft.tasks.readers.csn import first_docstring_sentence
from tests.conftest import ROOT, documented_functions, write_jsonl

REFINEMENT = "refinement/codexglue-small"
TRANSLATION = "translation/codexglue-java-cs"


def read(source: str, path: Path, **kwargs):
    return SOURCES.get(source).read(path, **kwargs)


def lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").split("\n")[:-1]


# ---------------------------------------------------------------- line pairs, real data


def test_refinement_real_splits_and_alignment(shared):
    folder = shared / REFINEMENT
    splits = read("line-pairs", folder)
    assert set(splits) == {"validation", "test"}
    assert [len(splits[s]) for s in ("validation", "test")] == [5835, 5835]  # the dataset README's counts
    for split, stem in (("validation", "valid"), ("test", "test")):
        buggy, fixed = lines(folder / f"{stem}.buggy-fixed.buggy"), lines(folder / f"{stem}.buggy-fixed.fixed")
        examples = splits[split]
        assert [e.text for e in examples] == buggy and [e.target for e in examples] == fixed
        assert examples[41].id == f"{stem}.buggy-fixed.buggy:42" and examples[41].meta["line"] == 42
        assert all(e.label is None and e.text_pair is None and e.group is None for e in examples)
    valid = splits["validation"]
    # buggy -> fixed (the inferred direction): a fix keeps the method's signature and changes its body
    assert all(e.meta["file"].endswith(".buggy") and e.meta["target_file"].endswith(".fixed") for e in valid)
    assert sum(e.text.split()[:6] == e.target.split()[:6] for e in valid) > 0.8 * len(valid)
    assert not any(e.text == e.target for e in valid)
    assert valid[0].text.endswith("} ")  # only the newline is stripped


def test_translation_real_both_directions(shared):
    folder = shared / TRANSLATION
    java_cs = read("line-pairs", folder)
    # the CodeXGLUE release has 500 validation pairs; the copy in ../shared holds 499 lines
    assert [len(java_cs[s]) for s in ("validation", "test")] == [len(lines(folder / "valid.java-cs.txt.java")), 1000]
    assert 495 <= len(java_cs["validation"]) <= 500
    valid = java_cs["validation"]
    assert valid[0].text == lines(folder / "valid.java-cs.txt.java")[0]
    assert valid[0].target == lines(folder / "valid.java-cs.txt.cs")[0]
    assert any("boolean " in e.text for e in valid) and not any("boolean " in e.target for e in valid)

    cs_java = read("line-pairs", folder, source_suffix="cs", target_suffix="java")
    assert [(e.text, e.target) for e in cs_java["test"]] == [(e.target, e.text) for e in java_cs["test"]]
    assert cs_java["test"][0].id == "test.java-cs.txt.cs:1"
    assert read("line-pairs", folder, source_suffix="cs")["validation"][3].target == valid[3].text  # other side

    single = read("line-pairs", folder / "test.java-cs.txt.cs")[ALL]  # one file: its partner has the other extension
    assert [(e.text, e.target) for e in single] == [(e.text, e.target) for e in cs_java["test"]]


# ---------------------------------------------------------------- line pairs, written files


def write_pair(folder: Path, stem: str, sources: str, targets: str, ext: tuple[str, str] = ("buggy", "fixed")) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{stem}.{ext[0]}").write_text(sources)
    (folder / f"{stem}.{ext[1]}").write_text(targets)


def test_line_pairs_train_split_crlf_and_last_line_without_newline(tmp_path):
    write_pair(tmp_path, "train.buggy-fixed", "a(1);\r\nb( 2 ) ;  \r\n", "a(2);\r\nb(3);")
    write_pair(tmp_path, "dev.buggy-fixed", "c\x0cd\n", "e\n")  # a form feed does not end a line
    write_pair(tmp_path, "test.buggy-fixed", "f\n", "g\n")
    (tmp_path / "README.md").write_text("not a pair file\n")
    splits = read("line-pairs", tmp_path)
    assert [(e.text, e.target) for e in splits["train"]] == [("a(1);", "a(2);"), ("b( 2 ) ;  ", "b(3);")]
    assert [(e.text, e.target) for e in splits["validation"]] == [("c\x0cd", "e")]


def test_line_pairs_mismatched_line_counts(tmp_path):
    write_pair(tmp_path, "valid.buggy-fixed", "a\nb\nc\n", "a\nb\n")
    with pytest.raises(DataError, match=r"valid\.buggy-fixed\.buggy has 3 lines but .*valid\.buggy-fixed\.fixed has 2"):
        read("line-pairs", tmp_path)


def test_line_pairs_missing_partner(tmp_path):
    (tmp_path / "test.java-cs.txt.java").write_text("class A {}\n")
    with pytest.raises(DataError, match=r"test\.java-cs\.txt\.cs: no such file \(the partner of test\.java-cs\.txt"):
        read("line-pairs", tmp_path)
    with pytest.raises(DataError, match=r"test\.java-cs\.txt\.cs: no such file \(the partner of test\.java-cs\.txt"):
        read("line-pairs", tmp_path / "test.java-cs.txt.java")


def test_line_pairs_empty_line_names_file_and_line(tmp_path):
    write_pair(tmp_path, "valid.java-cs.txt", "a\n\nc\n", "x\ny\nz\n", ("java", "cs"))
    with pytest.raises(DataError, match=r"valid\.java-cs\.txt\.java:2: empty line"):
        read("line-pairs", tmp_path)


def test_line_pairs_folder_without_pair_files_says_what_names(tmp_path):
    (tmp_path / "train.jsonl").write_text("{}\n")
    with pytest.raises(DataError, match=r"no line-aligned pair files \(expected names <split>\.<src>-<tgt>"):
        read("line-pairs", tmp_path)
    with pytest.raises(DataError, match="no such file or folder"):
        read("line-pairs", tmp_path / "absent")


def test_line_pairs_same_suffix_twice(tmp_path):
    write_pair(tmp_path, "valid.java-cs.txt", "a\n", "b\n", ("java", "cs"))
    with pytest.raises(DataError, match="both 'java'"):
        read("line-pairs", tmp_path, source_suffix="java", target_suffix="java")


# ---------------------------------------------------------------- Methods2Test


def test_methods2test_flat_records_with_group_and_split(tmp_path):
    rows = [{"focalMethod": f"int f{i}() {{ return {i}; }}", "testMethod": f"@Test void t{i}() {{ f{i}(); }}",
             "repo": f"r{i % 2}", "part": ("train", "valid", "test")[i % 3]} for i in range(6)]
    path = write_jsonl(tmp_path / "m2t.jsonl", rows)
    (example, *_) = read("methods2test", path)[ALL]
    assert (example.text, example.target, example.group, example.id) == (rows[0]["focalMethod"],
                                                                        rows[0]["testMethod"], None, "m2t.jsonl:1")
    splits = read("methods2test", path, group_field="repo", split_field="part")
    assert [len(splits[s]) for s in ("train", "validation", "test")] == [2, 2, 2]
    assert splits["validation"][0].group == "r1" and splits["validation"][0].meta["line"] == 2


def test_methods2test_original_schema_and_split_folder(tmp_path):
    def record(i: int) -> dict:
        return {"repository": {"repo_id": 100 + i, "url": f"https://github.com/o/r{i}"},
                "focal_class": {"identifier": "Calc", "file": "src/main/java/Calc.java"},
                "focal_method": {"identifier": "add", "body": f"public int add(int a) {{ return a + {i}; }}"},
                "test_class": {"identifier": "CalcTest", "file": "src/test/java/CalcTest.java"},
                "test_case": {"identifier": "testAdd", "body": f"@Test public void testAdd() {{ add({i}); }}"}}

    write_jsonl(tmp_path / "train.jsonl", [record(0), record(1)])
    with gzip.open(tmp_path / "validation.jsonl.gz", "wt") as handle:
        handle.write(json.dumps(record(2)) + "\n")
    write_jsonl(tmp_path / "test.jsonl", [record(3)])
    splits = read("methods2test", tmp_path)
    assert [len(splits[s]) for s in ("train", "validation", "test")] == [2, 1, 1]
    (example,) = splits["validation"]
    assert example.text == "public int add(int a) { return a + 2; }"
    assert example.target == "@Test public void testAdd() { add(2); }"
    assert example.group == "https://github.com/o/r2"  # the published split keeps a repository in one split


def test_methods2test_errors_name_file_line_and_field(tmp_path):
    path = write_jsonl(tmp_path / "m.jsonl", [{"focalMethod": "int f() {}", "testMethod": "void t() {}"},
                                              {"focalMethod": "int g() {}"}])
    with pytest.raises(DataError, match=r"m\.jsonl:2: missing field 'testMethod'"):
        read("methods2test", path)
    write_jsonl(path, [{"focalMethod": "int f() {}", "testMethod": "  "}])
    with pytest.raises(DataError, match=r"m\.jsonl:1: field 'testMethod' is empty"):
        read("methods2test", path)
    write_jsonl(path, [{"focal_method": {"body": "int f() {}"}, "test_case": {"identifier": "t"}}])
    with pytest.raises(DataError, match=r"m\.jsonl:1: field 'test_case\.body' is missing"):
        read("methods2test", path)
    write_jsonl(path, [{"src": "int f() {}", "tgt": "void t() {}", "split": "holdout"}])
    with pytest.raises(DataError, match=r"m\.jsonl:1: field 'split' is 'holdout'; expected one of train"):
        read("methods2test", path, source_field="src", target_field="tgt", split_field="split")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match=r"no \.jsonl files \(expected train/valid/test\.jsonl"):
        read("methods2test", empty)


# ---------------------------------------------------------------- code -> docstring sentence


@pytest.fixture
def source_dir(tmp_path: Path) -> Path:
    root = tmp_path / "src"
    root.mkdir()
    body = documented_functions(12, "Keep the items of group {i} below the limit. Anything else is dropped.")
    for module in "abcde":  # grouped by file: enough files for three splits
        (root / f"module_{module}.py").write_text(body.replace("function_", f"{module}_function_"))
    return root


def test_stdlib_summarization_code_to_first_docstring_sentence(source_dir):
    examples = read("stdlib-summarization", source_dir)[ALL]
    assert len(examples) == 60
    for example in examples:
        assert example.target.startswith("Keep the items of") and example.target.endswith("below the limit.")
        assert "Keep the items" not in example.text and "Anything else" not in example.text
        assert '"""' not in example.text and "kept.append" in example.text
        assert example.group == f"module_{example.id.split(':')[-1][0]}.py" and example.text_pair is None
    search = read("stdlib-search", source_dir)[ALL]  # the same pairs, the other way round
    assert [(e.text, e.text_pair) for e in search] == [(e.target, e.text) for e in examples]


def test_csn_as_code_to_text(tmp_path):
    doc = "Add two numbers.\n\n    Returns the sum."
    row = {"repo": "r", "path": "p.py", "func_name": "add", "docstring": doc,
           "code": f'def add(a, b):\n    """{doc}"""\n    return a + b'}
    path = write_jsonl(tmp_path / "test.jsonl", [row])
    (example,) = read("csn", path, kind=TaskKind.GENERATION)[ALL]
    assert example.target == "Add two numbers." == first_docstring_sentence(doc)
    assert example.text == "def add(a, b):\n    return a + b" and example.text_pair is None and example.group == "r"
    (retrieval,) = read("csn", path)[ALL]
    assert (retrieval.text, retrieval.text_pair, retrieval.target) == (example.target, example.text, None)


# ---------------------------------------------------------------- load_task end to end


def test_load_refinement_carves_train_from_validation(shared):
    config = config_from_dict({"name": "x", "model": "tiny-llama", "base_dir": str(ROOT),
                               "tasks": [{"name": "refinement", "max_examples": 50}]})
    data = load_task(config.tasks[0], config)
    assert data.spec.kind is TaskKind.GENERATION and data.source == "line-pairs"
    assert Path(data.path).resolve() == (shared / REFINEMENT).resolve()
    assert [len(data.splits[s]) for s in ("train", "validation", "test")] == [50, 50, 50]
    files = {s: {Path(e.meta["file"]).name for e in v} for s, v in data.splits.items()}
    assert files == {"train": {"valid.buggy-fixed.buggy"}, "validation": {"valid.buggy-fixed.buggy"},
                     "test": {"test.buggy-fixed.buggy"}}
    ids = [e.id for v in data.splits.values() for e in v]
    assert len(ids) == len(set(ids))  # no example in two splits
    assert all(e.target for v in data.splits.values() for e in v)


def test_load_generation_tasks_from_builder_and_csn(source_dir, tmp_path):
    summarization = {"name": "summarization", "path": str(source_dir), "split_ratios": [0.6, 0.2, 0.2]}
    rows = [{"repo": f"r{i}", "path": "p.py", "func_name": f"f{i}", "docstring": f"Return item number {i}.",
             "code": f"def f{i}(x):\n    return x[{i}]"} for i in range(20)]
    code_to_text = {"name": "code-to-text", "kind": "generation", "source": "csn",
                    "path": str(write_jsonl(tmp_path / "csn.jsonl", rows))}
    config = config_from_dict({"name": "x", "tasks": [summarization, code_to_text]})
    data = load_task(config.tasks[0], config)
    assert sum(len(v) for v in data.splits.values()) == 60
    assert all(e.target.startswith("Keep the items") for v in data.splits.values() for e in v)
    csn = load_task(config.tasks[1], config)
    assert all(e.target.startswith("Return item number") and e.text.startswith("def f")
               for v in csn.splits.values() for e in v)
