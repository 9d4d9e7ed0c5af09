"""LoRA, IA3, prefix tuning and prompt tuning through Hugging Face ``peft``.

Adapters are stored in peft's own format (``adapter_config.json`` + ``adapter_model.safetensors``),
so ``peft.PeftModel.from_pretrained(base, run_dir / "adapter")`` opens them without mtpeft.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field
from torch import nn

from mtpeft.errors import ConfigError, RunError
from mtpeft.io import atomic_dir
from mtpeft.methods.base import Method, MethodConfig, find_targets, register_method
from mtpeft.models.backbone import Backbone
from mtpeft.models.families import Family

ALL_LINEAR = "all-linear"
"""peft's shorthand for every linear layer of the backbone but its output layer; peft resolves it on injection."""


class LoraArgs(MethodConfig):
    r: int = Field(16, gt=0, description="Rank of the update (the paper: 16).")
    alpha: float = Field(16, gt=0, description="Scaling numerator: the update is scaled by alpha / r.")
    dropout: float = Field(0.0, ge=0, lt=1, description="Dropout on the LoRA input.")
    target_modules: list[str] | str | None = Field(
        None, description="Modules to adapt (peft rules, or all-linear); default: query/value projections of the "
        "family."
    )


class Ia3Args(MethodConfig):
    target_modules: list[str] | str | None = Field(None, description="Modules to rescale; default per family.")
    feedforward_modules: list[str] | str | None = Field(
        None, description="Which targets are feed-forward (input scaling); default per family."
    )


class PrefixArgs(MethodConfig):
    num_virtual_tokens: int = Field(20, gt=0, description="Prefix length (key/value pairs per layer).")
    projection: bool = Field(False, description="Reparameterise the prefix through an MLP (Li & Liang 2021).")
    encoder_hidden_size: int | None = Field(None, gt=0, description="Hidden size of that MLP (default: model's).")


class PromptArgs(MethodConfig):
    num_virtual_tokens: int = Field(20, gt=0, description="Soft prompt length prepended to every input.")


class HfPeftMethod(Method):
    """Shared machinery: build a ``PeftConfig``, wrap, save in peft format, load strictly."""

    def build_peft_config(self, backbone: Backbone) -> Any:
        raise NotImplementedError

    def inject(self, backbone: Backbone) -> nn.Module:
        from peft import get_peft_model
        from peft.tuners.tuners_utils import BaseTunerLayer

        config = self.build_peft_config(backbone)
        targets = getattr(config, "target_modules", None)
        if targets is not None and targets != ALL_LINEAR:
            self.targets = find_targets(backbone.model, sorted(targets) if isinstance(targets, set) else targets,
                                        self.name, "target_modules")
        model = get_peft_model(backbone.model, config)
        if targets == ALL_LINEAR:
            self.targets = [n for n, m in backbone.model.named_modules() if isinstance(m, BaseTunerLayer)]
        return model

    def save(self, encoder: nn.Module, backbone: Backbone, directory: Path) -> None:
        with atomic_dir(directory) as staging:
            encoder.save_pretrained(staging)
            config_file = staging / "adapter_config.json"
            data = json.loads(config_file.read_text())
            data["base_model_name_or_path"] = backbone.source  # so plain peft finds the base offline
            config_file.write_text(json.dumps(data, indent=2))

    def load(self, backbone: Backbone, directory: Path) -> nn.Module:
        from peft import PeftConfig, get_peft_model, get_peft_model_state_dict, set_peft_model_state_dict
        from safetensors.torch import load_file

        weights = directory / "adapter_model.safetensors"
        if not weights.is_file():
            raise RunError(f"{directory}: missing adapter_model.safetensors")
        config = PeftConfig.from_pretrained(str(directory))
        config.base_model_name_or_path = backbone.source  # the base as found here, which may have moved since
        model = get_peft_model(backbone.model, config)
        saved = load_file(str(weights))
        expected = set(get_peft_model_state_dict(model))
        missing, unexpected = sorted(expected - set(saved)), sorted(set(saved) - expected)
        if missing or unexpected:
            raise RunError(f"{weights}: adapter keys do not fit the model; missing {missing[:5]}, "
                           f"unexpected {unexpected[:5]}")
        set_peft_model_state_dict(model, saved)
        return model


class LoraMethod(HfPeftMethod):
    name = "lora"
    config_class = LoraArgs
    mergeable = True
    parameter_markers = ("lora_",)
    # the paper: LoRA on the attention query/value projections
    default_targets: ClassVar[dict[Family, Any]] = {
        "bert": ["query", "value"], "llama": ["q_proj", "v_proj"], "t5": ["q", "v"]}

    def build_peft_config(self, backbone: Backbone) -> Any:
        from peft import LoraConfig, TaskType

        args: LoraArgs = self.config  # type: ignore[assignment]
        targets = args.target_modules or self.family_default(backbone)
        return LoraConfig(r=args.r, lora_alpha=args.alpha, lora_dropout=args.dropout, target_modules=targets,
                          task_type=TaskType.FEATURE_EXTRACTION)


class Ia3Method(HfPeftMethod):
    name = "ia3"
    config_class = Ia3Args
    mergeable = True
    parameter_markers = ("ia3_",)
    # peft's own tables: (rescaled modules, of which the feed-forward ones, whose input is scaled)
    default_targets: ClassVar[dict[Family, Any]] = {
        "bert": (["key", "value", "output.dense"], ["output.dense"]),
        "llama": (["k_proj", "v_proj", "down_proj"], ["down_proj"]),
        "t5": (["k", "v", "wo"], ["wo"]),
    }

    def build_peft_config(self, backbone: Backbone) -> Any:
        from peft import IA3Config, TaskType

        args: Ia3Args = self.config  # type: ignore[assignment]
        targets, feedforward = args.target_modules, args.feedforward_modules
        if targets is None:
            targets, default_ff = self.family_default(backbone)
            feedforward = feedforward or default_ff
        return IA3Config(target_modules=targets, feedforward_modules=feedforward or [],
                         task_type=TaskType.FEATURE_EXTRACTION)


class PrefixMethod(HfPeftMethod):
    name = "prefix"
    supports_generation = False
    config_class = PrefixArgs
    parameter_markers = ("prompt_encoder",)

    def build_peft_config(self, backbone: Backbone) -> Any:
        from peft import PrefixTuningConfig, TaskType

        if backbone.family == "t5":
            raise ConfigError("method: prefix tuning does not run on T5 encoders in peft (its attention mask "
                              "is not extended there); use prompt, lora, ia3 or an adapter")
        args: PrefixArgs = self.config  # type: ignore[assignment]
        return PrefixTuningConfig(num_virtual_tokens=args.num_virtual_tokens, prefix_projection=args.projection,
                                  encoder_hidden_size=args.encoder_hidden_size or backbone.hidden_size,
                                  task_type=TaskType.FEATURE_EXTRACTION)


class PromptMethod(HfPeftMethod):
    name = "prompt"
    supports_generation = False
    config_class = PromptArgs
    parameter_markers = ("prompt_encoder",)

    @property
    def virtual_tokens(self) -> int:  # type: ignore[override]
        return self.config.num_virtual_tokens  # type: ignore[attr-defined]

    def build_peft_config(self, backbone: Backbone) -> Any:
        from peft import PromptTuningConfig, PromptTuningInit, TaskType

        return PromptTuningConfig(num_virtual_tokens=self.virtual_tokens, prompt_tuning_init=PromptTuningInit.RANDOM,
                                  task_type=TaskType.FEATURE_EXTRACTION)


for _method in (LoraMethod, Ia3Method, PrefixMethod, PromptMethod):
    register_method(_method)

