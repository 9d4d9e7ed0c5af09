"""The on-disk cache of mined functions returns what mining returns, and never serves a stale entry."""

from __future__ import annotations

from pathlib import Path

import pytest

from mtpeft.tasks.builders import python_functions
from mtpeft.tasks.builders.python_functions import mine_functions
from tests.conftest import documented_functions

mine = mine_functions.__wrapped__  # past the in-process lru_cache: every call goes to disk or parses


@pytest.fixture
def source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MTPEFT_HOME", str(tmp_path / "home"))
    root = tmp_path / "src"
    root.mkdir()
    (root / "module.py").write_text(documented_functions(5, "Return the items of group {i} below the limit."))
    return root


def entries(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "home" / "mined").glob("*.json.gz"))


def test_a_cached_result_equals_mining_again(source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = mine(source)
    assert len(first) == 5 and len(entries(tmp_path)) == 1
    with monkeypatch.context() as no_parsing:
        no_parsing.setattr(python_functions, "_mine", lambda *args: pytest.fail("parsed again"))
        assert mine(source) == first


def test_a_changed_source_file_is_mined_again(source: Path, tmp_path: Path) -> None:
    mine(source)
    (source / "module.py").write_text(documented_functions(7, "Return the items of group {i} below the limit."))
    assert len(mine(source)) == 7 and len(entries(tmp_path)) == 2


def test_a_damaged_entry_is_recomputed_and_replaced(source: Path, tmp_path: Path) -> None:
    first = mine(source)
    (entry,) = entries(tmp_path)
    entry.write_bytes(b"not gzip")
    assert mine(source) == first
    assert mine(source) == first  # the rewritten entry reads back


def test_a_home_that_cannot_be_written_only_costs_time(source: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    monkeypatch.setenv("MTPEFT_HOME", str(blocked))
    assert len(mine(source)) == 5
