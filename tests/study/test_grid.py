"""Expanding a study into runs, and splitting it into shards."""

from __future__ import annotations

from pathlib import Path

import pytest

from mtpeft.errors import ConfigError
from mtpeft.study import expand, load_study, parse_shard, shard_runs

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def smoke(tmp_path: Path, *overrides: str):
    return load_study(CONFIGS / "study-smoke.yaml", [f"output_dir={tmp_path}", *overrides])


def test_smoke_study_expands_to_sft_per_task_and_one_mft(tmp_path: Path) -> None:
    runs = expand(smoke(tmp_path, "axes.seed=[1, 2]"))
    # (2 SFT runs + 1 MFT run) x 2 methods x 2 seeds
    assert len(runs) == 12 and len({r.run_id for r in runs}) == 12
    for run in runs:
        names = {t.name for t in run.config.tasks}
        if run.setting == "mft":
            assert names == {"name-mismatch", "search"}
        else:
            assert len(names) == 1 and run.run_id.endswith(f"-{names.pop()}")
        assert run.config.method == run.method and run.config.train.seed == run.seed
        assert run.config.run_dir() == (tmp_path / "runs" / run.run_id).resolve()
        assert run.config.train.epochs == 1  # the study's overrides reach every run
    full = [r for r in runs if r.method == "full"]
    lora = [r for r in runs if r.method == "lora"]
    assert {r.config.train.lr for r in full} == {5e-5}  # method_overrides
    assert all(r.config.method_args == {} for r in full)  # the base's LoRA args do not leak into full
    assert all(r.config.method_args == {"r": 16, "alpha": 32} for r in lora)


def test_training_sizes_cap_every_task_and_name_the_run(tmp_path: Path) -> None:
    runs = expand(smoke(tmp_path, "axes.train_examples=[40, 200]", "axes.method=[lora]"))
    assert len(runs) == 2 * 3  # (2 SFT + 1 MFT) x 2 sizes
    for run in runs:
        assert f"-n{run.train_examples}" in run.run_id
        for task in run.config.tasks:  # validation and test keep the study's caps
            assert task.max_examples == {"train": run.train_examples, "validation": 100, "test": 100}


def test_smaller_training_sets_are_subsets_of_larger_ones(tmp_path: Path) -> None:
    from mtpeft.tasks import load_task

    runs = expand(smoke(tmp_path, "axes.train_examples=[40, 200]", "axes.method=[lora]", "axes.setting=[mft]"))
    small, large = ({ex.id for ex in load_task(r.config.tasks[0], r.config).splits["train"]}
                    for r in sorted(runs, key=lambda r: r.train_examples))
    assert len(small) == 40 and len(large) == 200 and small < large


@pytest.mark.parametrize("count", [1, 2, 3, 5])
def test_shards_partition_the_grid(tmp_path: Path, count: int) -> None:
    runs = expand(smoke(tmp_path, "axes.seed=[1, 2, 3]"))
    parts = [shard_runs(runs, i, count) for i in range(1, count + 1)]
    ids = [r.run_id for part in parts for r in part]
    assert sorted(ids) == sorted(r.run_id for r in runs)  # every run once
    assert max(map(len, parts)) - min(map(len, parts)) <= 1
    assert [r.run_id for r in shard_runs(expand(smoke(tmp_path, "axes.seed=[1, 2, 3]")), 1, count)] == \
        [r.run_id for r in parts[0]]  # deterministic


@pytest.mark.parametrize("text", ["0/2", "3/2", "1", "a/b", "1/0"])
def test_bad_shard_is_explained(text: str) -> None:
    with pytest.raises(ConfigError, match="expected i/n"):
        parse_shard(text)


@pytest.mark.parametrize(("override", "message"), [
    ("tasks=[search, clone]", "clone not in the base config"),
    ("tasks=[search]", "mft and pair need two or more tasks"),
    ("method_overrides={adaptor: [train.lr=1]}", "unknown method adaptor; valid: .*parallel_adapter"),
    ("overrides=[train.lr=abc]", "override train.lr=abc: train.lr"),
    ("axes.method=[lora, lora]", "unique"),
    ("axes.train_examples=[0]", "greater than or equal to 1"),
    ("axes.colour=[red]", "unknown key 'colour'"),
])
def test_bad_study_configs_are_explained(tmp_path: Path, override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        expand(smoke(tmp_path, override))


@pytest.mark.parametrize("name", ["study-smoke", "study-paper", "study-paper-gpu", "pairs-paper", "curve-paper"])
def test_shipped_study_configs_expand(name: str, tmp_path: Path) -> None:
    runs = expand(load_study(CONFIGS / f"{name}.yaml", [f"output_dir={tmp_path}"]))
    assert runs and len({r.run_id for r in runs}) == len(runs)


def test_gpu_study_uses_the_papers_pooling_and_adapter_size_per_run(tmp_path: Path) -> None:
    runs = expand(load_study(CONFIGS / "study-paper-gpu.yaml", [f"output_dir={tmp_path}"]))
    assert len(runs) == 4 * 4 * (1 + 4)  # per model and method: one MFT run and one SFT run per task
    for run in runs:
        assert run.config.pooling == ("pooler" if run.model == "microsoft/unixcoder-base" else "mean")
        assert run.config.train.max_length == 512
        if run.method in ("adapter", "parallel_adapter"):
            assert run.config.method_args == {"dim": 64}


def test_model_overrides_must_name_a_model_of_the_study(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="model_overrides: minlm not among the study's models"):
        expand(smoke(tmp_path, "model_overrides={minlm: [pooling=cls]}"))
