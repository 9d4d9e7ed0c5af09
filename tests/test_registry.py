import pytest

from mtpeft.registry import Registry, UnknownNameError


def test_unknown_name_lists_valid_names_and_suggests():
    reg: Registry[int] = Registry("method")
    for name in ("lora", "ia3", "prefix"):
        reg.add(name, 1)
    with pytest.raises(UnknownNameError) as err:
        reg.get("lroa")
    assert str(err.value) == "unknown method 'lroa'; valid: ia3, lora, prefix. Did you mean 'lora'?"


@pytest.mark.parametrize("name", ["LoRA", "lora ", "_x", ""])
def test_rejects_names_that_are_not_lower_case(name):
    with pytest.raises(ValueError, match="lower-case"):
        Registry("task").add(name, 1)


def test_rejects_duplicates():
    reg: Registry[int] = Registry("task")
    reg.add("clone", 1)
    with pytest.raises(ValueError, match="already registered"):
        reg.add("clone", 2)
