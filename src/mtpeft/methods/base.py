"""One interface for every fine-tuning method, and the target matching they share.

A method is a small pydantic config plus four operations: ``inject`` (make the backbone trainable
the method's way and return the module to run), ``save``/``load`` (what must be stored, in the
method's own format) and ``trainable_parameters``. ``full`` fine-tuning is a method like any other.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError
from torch import nn

from mtpeft.errors import ConfigError
from mtpeft.models.backbone import Backbone
from mtpeft.models.families import Family
from mtpeft.registry import Registry


class MethodConfig(BaseModel):
    """Base of method configs: unknown fields are errors, every field has a description."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class Method(ABC):
    """A fine-tuning method bound to its validated config.

    Its class attributes are its capabilities, read by everything that must know them (building a run,
    serving, ``mtpeft methods``) instead of lists of method names kept elsewhere.
    """

    name: ClassVar[str]
    config_class: ClassVar[type[MethodConfig]]
    storage: ClassVar[str] = "adapter"  # run-directory folder: "adapter" or "model"
    virtual_tokens: int = 0  # positions a method prepends to the encoder output (prompt tuning)
    supports_generation: ClassVar[bool] = True  # False where the method lives in peft's forward (prefix, prompt)
    mergeable: ClassVar[bool] = False  # its weights fold into the base weights (serving with --merge)
    default_targets: ClassVar[dict[Family, Any]] = {}  # model family -> where the method goes unless told
    targets_field: ClassVar[str] = "target_modules"  # the method_args field that overrides those defaults
    # what names every parameter the method adds to the backbone (peft's tuner ``prefix``): the ledger counts
    # those apart from the backbone's own, so a method that stores an adapter must declare them
    parameter_markers: ClassVar[tuple[str, ...]] = ()

    def __init__(self, args: dict[str, Any] | None = None) -> None:
        try:
            self.config = self.config_class.model_validate(args or {})
        except ValidationError as err:
            raise ConfigError([
                f"method_args.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                + (f" (method {self.name!r} takes: {', '.join(self.config_class.model_fields)})"
                   if e["type"] == "extra_forbidden" else "")
                for e in err.errors()
            ]) from None
        self.targets: list[str] = []

    @abstractmethod
    def inject(self, backbone: Backbone) -> nn.Module:
        """Prepare ``backbone.model`` for training with this method; return the module to call.

        Only the method's parameters are left trainable. Every check runs before the model changes,
        so a failure never leaves it half-adapted.
        """

    @abstractmethod
    def save(self, encoder: nn.Module, backbone: Backbone, directory: Path) -> None:
        """Write what this run must store (adapter files, or the whole model for ``full``)."""

    @abstractmethod
    def load(self, backbone: Backbone, directory: Path) -> nn.Module:
        """Inject into a freshly loaded backbone and load the saved weights strictly."""


    def family_default(self, backbone: Backbone) -> Any:
        """This method's default targets for ``backbone``'s family; an error says what to set otherwise."""
        if backbone.family not in self.default_targets:
            raise ConfigError(
                f"method_args.{self.targets_field}: no default for model type {backbone.model_type!r} "
                f"(defaults exist for the {', '.join(self.default_targets)} families); "
                f"set method_args.{self.targets_field}"
            )
        return self.default_targets[backbone.family]


    def adds(self, parameter_name: str) -> bool:
        """Whether ``parameter_name`` is one this method added (it carries one of its markers)."""
        return any(marker in parameter_name for marker in self.parameter_markers)


METHODS: Registry[type[Method]] = Registry("method")


def register_method(cls: type[Method]) -> type[Method]:
    """Add ``cls`` to :data:`METHODS`, checking first what every other layer relies on it to declare."""
    if cls.storage == "adapter" and not cls.parameter_markers:
        raise TypeError(f"method {cls.name!r} stores an adapter but declares no parameter_markers: name the "
                        "substrings its added parameters carry (as peft's tuners declare their prefix, e.g. 'lora_')")
    return METHODS.add(cls.name, cls)


def check_added_parameters(method: Method, encoder: nn.Module, original: set[int]) -> None:
    """The parameters ``inject`` added (not in ``original``, ids of the backbone's own) are exactly those that
    carry the method's markers; otherwise the ledger would count added weights as the backbone's or the reverse."""
    unmarked = [n for n, p in encoder.named_parameters() if id(p) not in original and not method.adds(n)]
    mistaken = [n for n, p in encoder.named_parameters() if id(p) in original and method.adds(n)]
    if unmarked or mistaken:
        raise TypeError(f"method {method.name!r}: its parameter_markers {method.parameter_markers} "
                        + (f"miss parameters it added, e.g. {unmarked[:3]}" if unmarked else
                           f"match the backbone's own parameters, e.g. {mistaken[:3]}")
                        + "; fix the method's declaration")


def create_method(name: str, args: dict[str, Any] | None = None) -> Method:
    return METHODS.get(name)(args)


def method_table() -> list[dict[str, Any]]:
    """Every registered method and its capabilities (``mtpeft methods``)."""
    return [{"method": name, "stores": cls.storage, "generation": cls.supports_generation, "mergeable": cls.mergeable,
             "default_targets": {family: _plain(t) for family, t in cls.default_targets.items()},
             "arguments": list(cls.config_class.model_fields)} for name, cls in METHODS.items()]


def methods_where(capability: str) -> list[str]:
    """Names of the methods with ``capability`` (a boolean class attribute such as ``mergeable``)."""
    return [name for name, cls in METHODS.items() if getattr(cls, capability)]


def can_merge(encoder: nn.Module, method: str) -> bool:
    """Whether ``encoder``, adapted by ``method``, folds into its base weights (peft ``merge_and_unload``)."""
    return METHODS.get(method).mergeable and hasattr(encoder, "merge_and_unload")


def _plain(targets: Any) -> Any:
    return list(targets) if isinstance(targets, tuple) else targets


def freeze(module: nn.Module) -> None:
    for p in module.parameters():
        p.requires_grad_(False)


def target_matches(name: str, targets: str | Iterable[str]) -> bool:
    """peft's rule: a string is a full-name regex; a list item matches the name or a ``.item`` suffix."""
    if isinstance(targets, str):
        return re.fullmatch(targets, name) is not None
    return any(name == t or name.endswith(f".{t}") for t in targets)


def find_targets(model: nn.Module, targets: str | list[str], what: str, field: str) -> list[str]:
    """Names of the Linear modules of ``model`` that ``targets`` selects; an error lists candidates."""
    names = [n for n, m in model.named_modules() if isinstance(m, nn.Linear) and target_matches(n, targets)]
    if names:
        return names
    leaves = list(dict.fromkeys(n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, nn.Linear)))
    raise ConfigError(
        f"method_args.{field}: {targets!r} matched no Linear module for {what}; linear layer names in this "
        f"model include: {', '.join(leaves[:20])}. List them all with "
        "`[n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)]`."
    )


def set_submodule(model: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, child, module)
