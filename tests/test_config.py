from pathlib import Path

import pytest

from mtpeft.config import config_from_dict, dump_config, load_config
from mtpeft.errors import ConfigError
from tests.conftest import SHARED

BASE = """\
name: t
model: tiny-bert
tasks:
  - name: bug
    max_examples: 50
train:
  epochs: 1
  lr: 0.001
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(text)
    return path


def test_loads_yaml_with_overrides(tmp_path):
    cfg = load_config(write(tmp_path, BASE), ["train.lr=1e-4", "method=adapter", "tasks.0.max_examples=20"])
    assert cfg.train.lr == 1e-4 and cfg.method == "adapter" and cfg.tasks[0].max_examples == 20
    assert cfg.base_dir == str(tmp_path.resolve())


def test_bad_value_names_file_line_and_field(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, BASE.replace("lr: 0.001", "lr: abc")))
    assert f"{tmp_path / 'run.yaml'}:8: train.lr: Input should be a valid number" in str(err.value)


def test_unknown_key_lists_valid_keys(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, BASE.replace("  epochs: 1", "  epohcs: 1")))
    message = str(err.value)
    assert "run.yaml:7: train.epohcs: unknown key 'epohcs'" in message
    assert "batch_size" in message and "epochs" in message


def test_every_problem_reported_at_once(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, BASE), ["train.lr=abc", "train.epochs=0", "loss_weighting=best"])
    problems = err.value.problems
    assert len(problems) == 3
    assert any(p.startswith("override train.lr=abc: train.lr:") for p in problems)
    assert any(p.startswith("override loss_weighting=best: loss_weighting:") and "learned_softmax" in p
               for p in problems)


def test_malformed_override_and_yaml(tmp_path):
    with pytest.raises(ConfigError, match="expected key=value"):
        load_config(write(tmp_path, BASE), ["train.lr"])
    with pytest.raises(ConfigError, match=r"run.yaml:\d+: not valid YAML"):
        load_config(write(tmp_path, "name: [unclosed\n"))


def test_duplicate_task_names_rejected():
    with pytest.raises(ConfigError, match="repeated: bug"):
        config_from_dict({"name": "x", "tasks": [{"name": "bug"}, {"name": "bug"}]})


def test_dump_round_trips(tmp_path):
    cfg = load_config(write(tmp_path, BASE))
    again = write(tmp_path, dump_config(cfg))
    assert load_config(again) == cfg


@pytest.mark.parametrize(("fields", "message"), [
    ({"fold": 5}, "fold 5 is set without folds"),
    ({"folds": 5, "fold": 5}, r"fold is 5; expected one of 0..4"),
    ({"folds": 2}, "greater than or equal to 3"),
    ({"folds": 5, "split_ratios": [0.6, 0.2, 0.2]}, "split_ratios and folds both given"),
])
def test_fold_options_are_checked(fields, message):
    with pytest.raises(ConfigError, match=message):
        config_from_dict({"name": "x", "tasks": [{"name": "flakiness", **fields}]})


def test_a_run_with_folds_round_trips(tmp_path):  # the saved config spells out the default split_ratios
    cfg = load_config(write(tmp_path, BASE.replace("max_examples: 50", "max_examples: 50\n    folds: 4\n    fold: 3")))
    assert load_config(write(tmp_path, dump_config(cfg))) == cfg


@pytest.mark.parametrize("name", ["quickstart", "paper-tasks", "paper-cpu", "paper-gpu", "generation",
                                  "generation-codexglue", "flaky-projects"])
def test_shipped_run_configs_validate(name):
    from mtpeft.tasks import SOURCES, resolve_spec

    config = load_config(Path(__file__).resolve().parents[1] / "configs" / f"{name}.yaml")
    for task in config.tasks:  # each task's source exists and makes its kind; shared data is where it says
        spec = resolve_spec(task)
        source = SOURCES.get(task.source or spec.default_source)
        assert spec.kind in source.kinds, (task.name, source.name)
        raw_path = task.path or spec.default_path
        assert raw_path or not source.needs_path, task.name
        if raw_path and "shared/datasets" in raw_path and SHARED.is_dir():  # (others are downloads, e.g. AdvTest)
            assert config.resolve_path(raw_path).exists(), (task.name, raw_path)


@pytest.mark.parametrize(("entry", "message"), [
    ({"name": "translation", "language": "cs"}, "tasks.0.language: Input should be 'python', 'java', 'c_sharp'"),
    ({"name": "clone", "long_inputs": "windows"}, "tasks.clone.long_inputs: windows needs pair_encoding: siamese"),
    ({"name": "search", "pair_encoding": "siamese"}, "tasks.search.pair_encoding: siamese is for pair tasks"),
    ({"name": "search", "pos_weight": "auto"}, "tasks.search.pos_weight: only classification tasks"),
    ({"name": "flakiness", "max_windows": 8}, "tasks.flakiness.max_windows: set, but long_inputs is 'truncate'"),
    ({"name": "flakiness", "focal_gamma": 1.0}, "tasks.flakiness.focal_gamma: set, but loss is 'bce'"),
    ({"name": "flakiness", "pos_weight": -1}, "must be a positive number or auto"),
])
def test_input_and_loss_options_must_fit_the_task(entry, message):
    from mtpeft.tasks import resolve_spec

    with pytest.raises(ConfigError, match=message):
        resolve_spec(config_from_dict({"name": "x", "tasks": [entry]}).tasks[0])
