"""Bottleneck adapters written here for BERT-, T5-encoder- and Llama/Qwen-style blocks.

- ``adapter`` (serial, Houlsby et al. 2019): after the attention output projection and after the
  FFN output projection, ``y <- y + up(act(down(y)))``, before the residual add.
- ``parallel_adapter`` (He et al. 2022): beside the FFN, ``ffn(x) <- ffn(x) + s * up(act(down(x)))``
  where ``x`` is the FFN's input.

``up`` starts at zero, so an adapted model computes exactly what the base model does until training
moves it. Stored as ``adapter/adapter_config.json`` + ``adapter/adapter_model.safetensors`` (the
file names peft uses) with keys that contain ``adapter_bottleneck.``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
from pydantic import Field
from torch import nn

from mtpeft.errors import ConfigError, RunError
from mtpeft.io import atomic_dir, save_safetensors, write_json
from mtpeft.methods.base import Method, MethodConfig, find_targets, freeze, register_method, set_submodule
from mtpeft.models.backbone import Backbone
from mtpeft.models.families import Family

KEY = "adapter_bottleneck"
_ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "tanh": nn.Tanh}



class Bottleneck(nn.Module):
    """``up(dropout(act(down(x))))`` with ``up`` initialised to zero."""

    def __init__(self, features: int, dim: int, activation: str, dropout: float) -> None:
        super().__init__()
        self.down = nn.Linear(features, dim)
        self.act = _ACTIVATIONS[activation]()
        self.dropout = nn.Dropout(dropout)
        self.up = nn.Linear(dim, features)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(self.dropout(self.act(self.down(x))))


class _WrapsLinear(nn.Module):
    """Exposes the wrapped projection's ``weight``: some blocks read it (T5 checks ``wo.weight.dtype``)."""

    base_layer: nn.Linear

    @property
    def weight(self) -> torch.Tensor:
        return self.base_layer.weight


class SerialAdapterLayer(_WrapsLinear):
    """Wraps a projection: ``y = base(x); return y + adapter(y)``."""

    def __init__(self, base_layer: nn.Linear, dim: int, activation: str, dropout: float) -> None:
        super().__init__()
        self.base_layer = base_layer
        self.adapter_bottleneck = Bottleneck(base_layer.out_features, dim, activation, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.base_layer(x)
        return y + self.adapter_bottleneck(y)


class ParallelAdapterLayer(_WrapsLinear):
    """Wraps the FFN output projection and adds ``scale * adapter(ffn_input)``.

    The FFN input is captured by a forward pre-hook on the FFN's input module, because in some
    blocks (BERT) the FFN is not one module whose input and output we could wrap together.
    """

    def __init__(self, base_layer: nn.Linear, input_module: nn.Module, dim: int, activation: str, dropout: float,
                 scale: float) -> None:
        super().__init__()
        self.base_layer = base_layer
        self.adapter_bottleneck = Bottleneck(base_layer.out_features, dim, activation, dropout)
        self.scale = scale
        self._ffn_input: torch.Tensor | None = None
        self._hook = input_module.register_forward_pre_hook(self._capture)

    def _capture(self, module: nn.Module, args: tuple[Any, ...]) -> None:
        self._ffn_input = args[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._ffn_input is None:
            raise RuntimeError("parallel adapter: the FFN input module did not run before its output projection")
        ffn_input, self._ffn_input = self._ffn_input, None
        return self.base_layer(x) + self.scale * self.adapter_bottleneck(ffn_input)


class AdapterArgs(MethodConfig):
    dim: int = Field(64, gt=0, description="Bottleneck width (the paper: 64).")
    activation: Literal["relu", "gelu", "silu", "tanh"] = Field("relu", description="Bottleneck non-linearity.")
    dropout: float = Field(0.0, ge=0, lt=1, description="Dropout inside the bottleneck.")
    target_modules: list[str] | str | None = Field(
        None, description="Output projections to follow (peft matching rules); default: attention and FFN outputs."
    )


class ParallelAdapterArgs(MethodConfig):
    dim: int = Field(64, gt=0, description="Bottleneck width (the paper: 64).")
    activation: Literal["relu", "gelu", "silu", "tanh"] = Field("relu", description="Bottleneck non-linearity.")
    dropout: float = Field(0.0, ge=0, lt=1, description="Dropout inside the bottleneck.")
    scale: float = Field(1.0, gt=0, description="Multiplier s of the adapter's output.")
    ffn_output: str | None = Field(None, description="Regex with a `block` group matching FFN output projections.")
    ffn_input: str | None = Field(None, description="Template of the FFN input module name, e.g. '{block}.mlp'.")


class _BottleneckMethod(Method):
    """Shared save/load: adapter keys only, strict on load."""

    peft_type: ClassVar[str]
    parameter_markers = (KEY,)

    def inject(self, backbone: Backbone) -> nn.Module:
        freeze(backbone.model)
        self._wrap_checked(backbone)
        return backbone.model

    def _wrap_checked(self, backbone: Backbone) -> None:
        raise NotImplementedError

    def save(self, encoder: nn.Module, backbone: Backbone, directory: Path) -> None:
        with atomic_dir(directory) as staging:
            save_safetensors(staging / "adapter_model.safetensors", adapter_state_dict(encoder),
                             metadata={"format": "pt"})
            write_json(staging / "adapter_config.json", {
                "peft_type": self.peft_type, "mtpeft_method": self.name, "base_model_name_or_path": backbone.source,
                "target_modules": self.targets, **self.config.model_dump(),
            })

    def load(self, backbone: Backbone, directory: Path) -> nn.Module:
        from safetensors.torch import load_file

        config_file, weights = directory / "adapter_config.json", directory / "adapter_model.safetensors"
        for f in (config_file, weights):
            if not f.is_file():
                raise RunError(f"{directory}: missing {f.name}")
        saved_config = json.loads(config_file.read_text())
        if saved_config.get("mtpeft_method") != self.name:
            raise RunError(f"{config_file}: holds a {saved_config.get('mtpeft_method')!r} adapter, not {self.name!r}")
        encoder = self.inject(backbone)
        load_adapter_state_dict(encoder, load_file(str(weights)), weights)
        return encoder


class SerialAdapterMethod(_BottleneckMethod):
    name = "adapter"
    config_class = AdapterArgs
    peft_type = "MTPEFT_SERIAL_ADAPTER"
    # regexes of the output projections a serial adapter follows (attention out, FFN out)
    default_targets: ClassVar[dict[Family, Any]] = {
        "bert": r"(.*\.)?(attention\.output|layer\.\d+\.output)\.dense",
        "llama": r"(.*\.)?(self_attn\.o_proj|mlp\.down_proj)",
        "t5": r"(.*\.)?(SelfAttention\.o|DenseReluDense\.wo)",
    }

    def _wrap_checked(self, backbone: Backbone) -> None:
        args: AdapterArgs = self.config  # type: ignore[assignment]
        targets = args.target_modules or self.family_default(backbone)
        self.targets = find_targets(backbone.model, targets, self.name, "target_modules")
        for name in self.targets:
            base = backbone.model.get_submodule(name)
            set_submodule(backbone.model, name, SerialAdapterLayer(base, args.dim, args.activation, args.dropout))


class ParallelAdapterMethod(_BottleneckMethod):
    name = "parallel_adapter"
    config_class = ParallelAdapterArgs
    peft_type = "MTPEFT_PARALLEL_ADAPTER"
    # (regex of the FFN output projection with a `block` group, template of the FFN input module)
    default_targets: ClassVar[dict[Family, Any]] = {
        "bert": (r"(?P<block>(.*\.)?layer\.\d+)\.output\.dense", "{block}.intermediate"),
        "llama": (r"(?P<block>(.*\.)?mlp)\.down_proj", "{block}"),
        "t5": (r"(?P<block>(.*\.)?DenseReluDense)\.wo", "{block}"),
    }
    targets_field = "ffn_output"

    def _wrap_checked(self, backbone: Backbone) -> None:
        args: ParallelAdapterArgs = self.config  # type: ignore[assignment]
        output_regex, input_template = args.ffn_output, args.ffn_input
        if output_regex is None or input_template is None:
            output_regex, input_template = self.family_default(backbone)
        self.targets = find_targets(backbone.model, output_regex, self.name, "ffn_output")
        pairs = []
        for name in self.targets:  # check every input module exists before changing anything
            match = re.fullmatch(output_regex, name)
            input_name = input_template.format(**match.groupdict()) if match else ""
            try:
                pairs.append((name, backbone.model.get_submodule(input_name)))
            except AttributeError:
                raise ConfigError(f"method_args.ffn_input: {input_name!r} (for {name}) is not a module") from None
        for name, input_module in pairs:
            base = backbone.model.get_submodule(name)
            set_submodule(backbone.model, name, ParallelAdapterLayer(
                base, input_module, args.dim, args.activation, args.dropout, args.scale))


def adapter_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The bottleneck adapter tensors of ``model`` (keys contain ``adapter_bottleneck.``)."""
    return {k: v for k, v in model.state_dict().items() if f"{KEY}." in k}


def load_adapter_state_dict(model: nn.Module, state: dict[str, torch.Tensor], where: Path | str) -> None:
    """Load adapter tensors strictly: missing or unexpected keys are an error that lists them."""
    expected = set(adapter_state_dict(model))
    missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or unexpected:
        raise RunError(f"{where}: adapter keys do not fit the model; missing {missing[:5]}, "
                       f"unexpected {unexpected[:5]}")
    model.load_state_dict(state, strict=False)


register_method(SerialAdapterMethod)
register_method(ParallelAdapterMethod)
