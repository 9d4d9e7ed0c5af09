"""What the exporters share: the texts each checks its output on before writing it, and the run's encoder as a
plain transformers model (the form other libraries load)."""

from __future__ import annotations

import importlib.util
from typing import Any

from mtpeft.errors import ConfigError, MtpeftError
from mtpeft.methods import METHODS, can_merge, methods_where
from mtpeft.models.multitask import MultiTaskModel

SAMPLE_TEXTS = ["def add(a, b):\n    return a + b", "int main(void) { char buf[8]; gets(buf); return 0; }",
                "for (int i = 0; i < n; i++) total += values[i];", "x", "public static void main(String[] args) {}",
                "while queue:\n    node = queue.pop()\n    visit(node)"]


def require(*modules: str) -> None:
    """Exports and the ONNX backend need the optional ``export`` extra; say so instead of an ImportError."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise MtpeftError(f"{', '.join(missing)} not installed: exports and --backend onnx need mtpeft's export extra "
                          "(pip install 'mtpeft[export]'; make setup installs it)")


def plain_encoder(model: MultiTaskModel, method: str, target: str) -> Any:
    """``model``'s encoder with nothing of mtpeft or peft left in it: LoRA/IA3 merged into the base weights, a fully
    fine-tuned model as it is. Other methods' modules run only inside mtpeft or peft, so ``target`` (what the
    export is for) cannot hold them."""
    if model.seq2seq:
        raise ConfigError(f"--format {target}: the run has generation tasks, so its backbone is a whole "
                          "encoder-decoder; export a run without them")
    if can_merge(model.encoder, method):
        return model.encoder.merge_and_unload()
    if METHODS.get(method).storage == "model":
        return model.encoder
    plain = [*methods_where("mergeable"), *(name for name, cls in METHODS.items() if cls.storage == "model")]
    raise ConfigError(f"--format {target}: a {method!r} run's modules need mtpeft (or peft) to run; a plain "
                      f"transformers model holds only {', '.join(plain)} runs (use --format onnx, which exports "
                      "any method)")
