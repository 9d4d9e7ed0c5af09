"""Serving a trained run: `mtpeft predict` (jsonl in, jsonl out) and `mtpeft serve` (HTTP JSON API).

One shared backbone answers every task: items of different tasks are merged into one forward pass and
only the per-task heads differ (see docs/serving.md).
"""

from mtpeft.serve.app import create_app
from mtpeft.serve.batcher import Batcher
from mtpeft.serve.limits import Limits
from mtpeft.serve.predict_file import predict_file
from mtpeft.serve.predictor import Encoded, Predictor
from mtpeft.serve.server import BackgroundServer, serve

__all__ = ["BackgroundServer", "Batcher", "Encoded", "Limits", "Predictor", "create_app", "predict_file", "serve"]
