"""Full fine-tuning: every backbone weight trains; the run stores the whole model in ``model/``."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from mtpeft.errors import RunError
from mtpeft.io import atomic_dir
from mtpeft.methods.base import Method, MethodConfig, register_method
from mtpeft.models.backbone import Backbone, load_backbone


class FullArgs(MethodConfig):
    """Full fine-tuning has no arguments."""


class FullMethod(Method):
    name = "full"
    config_class = FullArgs
    storage = "model"

    def inject(self, backbone: Backbone) -> nn.Module:
        for p in backbone.model.parameters():
            p.requires_grad_(True)
        self.targets = ["*"]
        return backbone.model

    def save(self, encoder: nn.Module, backbone: Backbone, directory: Path) -> None:
        with atomic_dir(directory) as staging:
            encoder.save_pretrained(staging)
            backbone.tokenizer.save_pretrained(staging)

    def load(self, backbone: Backbone, directory: Path) -> nn.Module:
        if not (directory / "config.json").is_file():
            raise RunError(f"{directory}: not a saved model (no config.json)")
        backbone.model = load_backbone(str(directory), language_model=backbone.seq2seq).model
        return self.inject(backbone)


register_method(FullMethod)
