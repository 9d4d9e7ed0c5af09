import pytest

from mtpeft.config import config_from_dict
from mtpeft.errors import ConfigError, DataError
from mtpeft.registry import UnknownNameError
from mtpeft.tasks import load_task
from tests.conftest import write_jsonl


def cfg(*tasks, **train):
    return config_from_dict({"name": "x", "tasks": list(tasks), "train": train})


def test_unknown_source_suggests():
    config = cfg({"name": "vulnerability", "source": "bigvull"})
    with pytest.raises(UnknownNameError, match=r"unknown source 'bigvull'.*Did you mean 'bigvul'"):
        load_task(config.tasks[0], config)


def test_custom_task_needs_a_kind():
    config = cfg({"name": "my-task", "source": "jsonl", "path": "x.jsonl"})
    with pytest.raises(ConfigError, match="give its `kind`"):
        load_task(config.tasks[0], config)


def test_unknown_reader_args_list_valid_ones(tiny_jsonl_task):
    config = cfg({"name": "t", "kind": "binary", "source": "devign", "path": str(tiny_jsonl_task),
                  "reader_args": {"split_by": "project"}})
    with pytest.raises(ConfigError, match="unknown split_by for source 'devign'; valid: none"):
        load_task(config.tasks[0], config)


def test_metric_must_fit_the_kind(tiny_jsonl_task):
    config = cfg({"name": "t", "kind": "binary", "source": "devign", "path": str(tiny_jsonl_task), "metric": "mrr"})
    with pytest.raises(ConfigError, match="'mrr' is not a metric of this binary task; valid: accuracy"):
        load_task(config.tasks[0], config)


def test_empty_split_is_an_error(tiny_jsonl_task):
    config = cfg({"name": "t", "kind": "binary", "source": "devign", "path": str(tiny_jsonl_task),
                  "split_ratios": [1.0, 0.0, 0.0]})
    with pytest.raises(DataError, match="empty validation split"):
        load_task(config.tasks[0], config)


def test_caps_and_group_aware_split_on_real_bigvul(shared):
    config = cfg({"name": "vulnerability", "source": "bigvul", "path": str(shared / "vulnerability/bigvul"),
                  "max_examples": {"train": 400, "validation": 100, "test": 100}})
    data = load_task(config.tasks[0], config)
    assert [len(data.splits[s]) for s in ("train", "validation", "test")] == [400, 100, 100]
    groups = {s: {e.group for e in v} for s, v in data.splits.items()}
    assert not groups["train"] & groups["test"] and not groups["train"] & groups["validation"]


def test_paper_tasks_config_stats(shared):
    from pathlib import Path

    from mtpeft.config import load_config
    from mtpeft.data_stats import task_stats

    root = Path(__file__).resolve().parents[2]
    stats = task_stats(load_config(root / "configs" / "paper-tasks.yaml"), with_tokens=False)
    assert set(stats) == {"vulnerability", "clone", "flakiness", "search"}
    flaky = stats["flakiness"]["splits"]["train"]
    assert 0.02 < flaky["positive_rate"] < 0.05
    assert 0.3 < stats["clone"]["splits"]["test"]["positive_rate"] < 0.7
    assert 0.3 < stats["vulnerability"]["splits"]["test"]["positive_rate"] < 0.7


def test_folds_rotate_the_held_out_groups(tiny_jsonl_task):
    task = {"name": "t", "kind": "binary", "source": "jsonl", "path": str(tiny_jsonl_task),
            "reader_args": {"text_field": "func", "label_field": "target", "group_field": "idx"}, "folds": 4}
    tests = []
    for fold in range(4):
        config = cfg({**task, "fold": fold})
        tests.append({e.id for e in load_task(config.tasks[0], config).splits["test"]})
    assert sum(map(len, tests)) == 96 and len(set().union(*tests)) == 96


def test_folds_refuse_a_source_with_its_own_splits(tmp_path):
    rows = [{"text": f"x{i}", "label": i % 2, "split": ("train", "valid", "test")[i % 3]} for i in range(30)]
    path = write_jsonl(tmp_path / "d.jsonl", rows)
    config = cfg({"name": "t", "kind": "binary", "source": "jsonl", "path": str(path),
                  "reader_args": {"split_field": "split"}, "folds": 3})
    with pytest.raises(ConfigError, match=r"tasks.t.folds: the source ships its own splits \(test, train, valid"):
        load_task(config.tasks[0], config)
