"""`--overwrite` replaces a finished run only by a run that finished: whatever stops the retrain (a bad value, a
NaN loss, a kill, a full disk), the finished run's files stay byte for byte as they were; and it refuses folders
that are not runs, or whose loss would take much else with them."""

from __future__ import annotations

import errno
import hashlib
from pathlib import Path

import pytest

from mtpeft.errors import ConfigError
from mtpeft.run.directory import check_replaceable, staging_dir
from mtpeft.run.files import RunFiles, is_complete
from mtpeft.train import TrainingDiverged, loop, train
from tests.train.conftest import crash_after_step
from tests.train.test_training import config

pytestmark = pytest.mark.slow


def fingerprint(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def finished(tmp_path, tiny_jsonl_task):
    cfg = config(tmp_path, tiny_jsonl_task, train__epochs=1, train__checkpoint_every=2)
    run = train(cfg, progress=False)
    return cfg, run, fingerprint(run)


def nan_loss(monkeypatch):
    from mtpeft.models.heads import ClassificationHead

    original = ClassificationHead.loss
    monkeypatch.setattr(ClassificationHead, "loss", lambda head, *args: original(head, *args) * float("nan"))


def full_disk(monkeypatch):
    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(loop, "write_ledger", no_space)  # the run's last files, after the weights


@pytest.mark.parametrize(("failure", "error"), [(nan_loss, TrainingDiverged), (full_disk, OSError)])
def test_a_failed_retrain_leaves_the_finished_run_byte_identical(finished, failure, error, monkeypatch):
    cfg, run, before = finished
    failure(monkeypatch)
    with pytest.raises(error):
        train(cfg.model_copy(update={"train": cfg.train.model_copy(update={"lr": 0.05})}), overwrite=True,
              progress=False)
    assert fingerprint(run) == before and is_complete(run)


def test_a_retrain_killed_mid_way_resumes_beside_and_replaces_the_run_when_it_finishes(finished):
    cfg, run, before = finished
    retrain = cfg.model_copy(update={"train": cfg.train.model_copy(update={"epochs": 2})})
    with pytest.raises(KeyboardInterrupt), crash_after_step(15):  # past the checkpoint at step 14, in epoch 2
        train(retrain, overwrite=True, progress=False)
    assert fingerprint(run) == before
    assert RunFiles(staging_dir(run)).checkpoint.is_file()
    with pytest.raises(ConfigError, match="another config"):  # the finished run's own config is not the retrain's
        train(cfg, resume=True, progress=False)
    assert train(retrain, resume=True, progress=False) == run
    assert is_complete(run) and not staging_dir(run).exists()
    assert fingerprint(run) != before
    assert RunFiles(run).config.read_text().count("epochs: 2") == 1


def test_a_bad_value_is_refused_before_anything_is_touched(finished):
    from mtpeft.config import load_config

    _, run, before = finished
    with pytest.raises(ConfigError, match="finite number"):
        load_config(RunFiles(run).config, ["train.lr=inf"])
    assert fingerprint(run) == before


def test_overwrite_refuses_a_folder_that_is_not_a_run(tmp_path, tiny_jsonl_task):
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "thesis.tex").write_text("years of work")
    cfg = config(tmp_path, tiny_jsonl_task, train__epochs=1, output_dir=str(folder))
    with pytest.raises(ConfigError, match=r"replaces only a run directory.*no run\.json"):
        train(cfg, overwrite=True, progress=False)
    assert (folder / "thesis.tex").read_text() == "years of work"


def test_overwrite_refuses_the_places_whose_loss_would_take_everything(tmp_path, monkeypatch):
    work = tmp_path / "home" / "me" / "project"
    work.mkdir(parents=True)
    RunFiles(work).mark("complete")  # even a folder that looks like a run
    monkeypatch.chdir(work)
    monkeypatch.setenv("HOME", str(tmp_path / "elsewhere"))
    for target, what in [(Path("."), "the current directory"), (work.parent, "a parent of the current directory"),
                         (tmp_path / "elsewhere", "the home folder"), (Path("/"), "the filesystem root"),
                         (Path(loop.__file__).parents[3], "the mtpeft checkout")]:
        with pytest.raises(ConfigError, match=f"refuses to replace {what}"):
            check_replaceable(target)
    assert RunFiles(work).is_run()
