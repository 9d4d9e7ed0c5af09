"""Backbones (offline zoo, tiny test models), pooling, heads and the multi-task model."""

from mtpeft.models.backbone import Backbone, load_backbone
from mtpeft.models.multitask import MultiTaskModel
from mtpeft.models.zoo import ZOO, mtpeft_home, resolve_model

__all__ = ["ZOO", "Backbone", "MultiTaskModel", "load_backbone", "mtpeft_home", "resolve_model"]
