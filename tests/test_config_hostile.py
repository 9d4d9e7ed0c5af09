"""Configs a hostile or careless user writes: each is a valid RunConfig or a ConfigError whose every problem is one
line naming where it is, with bounded work (alias bombs, self-reference, deep nesting, huge files)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from mtpeft.cli import app
from mtpeft.config import MAX_CONFIG_BYTES, MAX_CONFIG_NODES, RunConfig, TaskConfig, TrainConfig, load_config
from mtpeft.errors import ConfigError

PROPERTY = settings(max_examples=200, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=10)
task = st.dictionaries(st.sampled_from([*TaskConfig.model_fields, "nope"]), values, max_size=5)
mapping = st.dictionaries(
    st.sampled_from([*RunConfig.model_fields, "extra"]) | st.text(max_size=6),
    values | st.lists(task, max_size=2) | st.dictionaries(st.sampled_from([*TrainConfig.model_fields]), values,
                                                          max_size=4),
    max_size=6)


def load_or_one_line_problems(path: Path, overrides: list[str] | None = None) -> None:
    try:
        assert isinstance(load_config(path, overrides), RunConfig)
    except ConfigError as err:
        assert err.problems
        for problem in err.problems:
            assert "\n" not in problem and (problem.startswith(str(path)) or problem.startswith("override")), problem


@PROPERTY
@given(mapping)
def test_any_mapping_loads_or_names_each_problem_in_one_line(tmp_path, data: dict) -> None:
    path = tmp_path / "any.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    load_or_one_line_problems(path)


@PROPERTY
@given(st.text(max_size=200), st.lists(st.text(max_size=20).map(lambda v: f"train.lr={v}"), max_size=2))
def test_any_text_and_overrides_load_or_name_each_problem_in_one_line(tmp_path, text: str, overrides: list) -> None:
    path = tmp_path / "any.yaml"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    load_or_one_line_problems(path, overrides)


def laughs(levels: int) -> str:
    """The "billion laughs": each level a list of nine aliases of the one before (9^levels strings)."""
    lines = ["name: bomb", "tasks: [{name: devign}]", 'l0: &l0 ["lol"]']
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


def laughs_nodes(levels: int) -> int:
    """What :func:`laughs` expands to: every use of an alias counts its whole tree."""
    sizes = [2]  # l0: a list and its string
    for _ in range(levels):
        sizes.append(1 + 9 * sizes[-1])
    return 1 + 2 + 5 + sum(1 + size for size in sizes)  # the root, name: bomb, tasks: [{name: devign}], each key


@pytest.mark.parametrize(("text", "message"), [
    (laughs(9), f": expands to {laughs_nodes(9):,} YAML nodes through its aliases (*name); a config may have at "
                f"most {MAX_CONFIG_NODES:,}"),
    ("name: x\ntasks: &t [*t]\n", ":2: not valid YAML: a YAML anchor (&name) is used inside itself"),
    ("name: x\ntasks: " + "[" * 50_000 + "]" * 50_000 + "\n", ": YAML nested too deeply to read"),
    ("name: x\ntasks: [{name: devign}]\ntrain: {lr: 2020-02-30}\n", ": not valid YAML: day is out of range for month"),
    ("name: x\ntasks: [{name: devign, max_examples: {train: -16}}]\n",
     ":2: tasks.0.max_examples: Value error, every cap must be at least 1 example, got {'train': -16}"),
    ("name: x\ntasks: [{name: devign, max_examples: 0}]\n", ":2: tasks.0.max_examples: Value error, every cap"),
])
def test_hostile_configs_fail_fast_in_one_line(tmp_path, text, message):
    path = tmp_path / "hostile.yaml"
    path.write_text(text)
    result = CliRunner().invoke(app, ["train", str(path)])
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1, result.output
    assert lines[0].startswith(f"error: invalid config: {path}{message}"), lines


def test_an_alias_bomb_says_what_a_config_may_have(tmp_path):
    path = tmp_path / "bomb.yaml"
    path.write_text(laughs(30))  # 9^30 strings: counted, never built
    with pytest.raises(ConfigError, match=rf"expands to about 10\^\d+ YAML nodes through its aliases \(\*name\); a "
                                          f"config may have at most {MAX_CONFIG_NODES:,}"):
        load_config(path)


def test_a_small_alias_is_still_a_config(tmp_path):
    path = tmp_path / "anchors.yaml"
    path.write_text("name: x\ntasks:\n  - &devign {name: devign, max_examples: 20}\n  - {<<: *devign, name: bcb}\n")
    assert [t.max_examples for t in load_config(path).tasks] == [20, 20]


def test_a_config_file_is_small(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_text("name: x\ntasks: [{name: devign}]\n" + "# padding\n" * (MAX_CONFIG_BYTES // 10))
    with pytest.raises(ConfigError, match=f"over {MAX_CONFIG_BYTES:,} bytes; a config file is at most that"):
        load_config(path)


@pytest.mark.parametrize(("given", "message"), [("/dev/zero", "is a device"), (".", "is a folder"),
                                                ("missing.yaml", "no such config file")])
def test_a_config_that_is_not_a_file_is_named_as_what_it_is(given, message):
    with pytest.raises(ConfigError, match=f"{given}: {message}"):
        load_config(given)


def test_an_override_is_parsed_with_the_same_bounds(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("name: x\ntasks: [{name: devign}]\n")
    with pytest.raises(ConfigError) as err:
        load_config(path, ["train.lr=[", "method_args.x=&a [*a]"])
    assert err.value.problems == [
        "override train.lr=[: not valid YAML: expected the node content, but found '<stream end>'",
        "override method_args.x=&a [*a]: not valid YAML: a YAML anchor (&name) is used inside itself; a config is a "
        "tree"]
