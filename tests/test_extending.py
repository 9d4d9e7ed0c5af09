"""docs/architecture.md's "How to add a method / a task", done as the page says: a throwaway method (a learned
scale on chosen Linear outputs, its own parameter prefix) and a throwaway reader (``label<TAB>code`` lines) train a
run end to end, and the ledger counts the new method's parameters right. The registering run happens in a child
process, so the registries of this test session keep only the built-in names."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from pydantic import Field
from torch import nn

from mtpeft.methods import Method, MethodConfig, check_added_parameters, find_targets, register_method
from mtpeft.methods.base import freeze, set_submodule
from mtpeft.models.backbone import load_backbone

ROOT = Path(__file__).resolve().parents[1]

PLUGIN = textwrap.dedent('''
    """A method and a reader written from docs/architecture.md alone."""
    from pathlib import Path
    from typing import Any, ClassVar

    import torch
    from pydantic import Field
    from safetensors.torch import load_file
    from torch import nn

    from mtpeft.io import atomic_dir, save_safetensors, write_json
    from mtpeft.methods import Method, MethodConfig, find_targets, register_method
    from mtpeft.methods.base import freeze, set_submodule
    from mtpeft.tasks.readers.base import ALL, register_source
    from mtpeft.tasks.spec import Example, TaskKind


    class ScaleArgs(MethodConfig):
        target_modules: list[str] | None = Field(None, description="Linear layers whose outputs are rescaled.")


    class ScaledLinear(nn.Module):
        def __init__(self, base: nn.Linear) -> None:
            super().__init__()
            self.base_layer = base
            self.scale_vector = nn.Parameter(torch.ones(base.out_features))

        def forward(self, x):
            return self.base_layer(x) * self.scale_vector


    class ScaleMethod(Method):
        name = "scale"
        config_class = ScaleArgs
        parameter_markers = ("scale_vector",)
        default_targets: ClassVar[dict[str, Any]] = {"bert": ["value", "output.dense"]}

        def inject(self, backbone):
            freeze(backbone.model)
            targets = self.config.target_modules or self.family_default(backbone)
            self.targets = find_targets(backbone.model, targets, self.name, "target_modules")
            for name in self.targets:
                set_submodule(backbone.model, name, ScaledLinear(backbone.model.get_submodule(name)))
            return backbone.model

        def save(self, encoder, backbone, directory: Path) -> None:
            with atomic_dir(directory) as staging:
                save_safetensors(staging / "adapter_model.safetensors",
                                 {k: v for k, v in encoder.state_dict().items() if self.adds(k)})
                write_json(staging / "adapter_config.json", {"mtpeft_method": self.name, "targets": self.targets})

        def load(self, backbone, directory: Path):
            encoder = self.inject(backbone)
            encoder.load_state_dict(load_file(str(directory / "adapter_model.safetensors")), strict=False)
            return encoder


    register_method(ScaleMethod)


    @register_source("tab-lines", "reader", (TaskKind.BINARY,), "label<TAB>code, one example per line.")
    def read_tab_lines(path: Path):
        examples = []
        for number, line in enumerate(path.read_text().splitlines(), 1):
            label, code = line.split("\\t", 1)
            examples.append(Example(id=str(number), text=code, label=int(label)))
        return {ALL: examples}
''')

TRAIN = textwrap.dedent('''
    import json, sys
    sys.path.insert(0, sys.argv[1])
    import throwaway_plugin  # registers the method and the reader
    from mtpeft.config import config_from_dict
    from mtpeft.train import train

    run = train(config_from_dict(json.loads(sys.argv[2])), progress=False)
    print(run)
''')


def test_a_method_and_a_reader_added_as_documented_train_a_run(tmp_path):
    (tmp_path / "throwaway_plugin.py").write_text(PLUGIN)
    lines = [f"{i % 2}\tvoid f_{i}(char *s) {{ {'strcpy(b, s);' if i % 2 else 'strncpy(b, s, 8);'} }}"
             for i in range(64)]
    (tmp_path / "tasks.tsv").write_text("\n".join(lines) + "\n")
    config = {"name": "extended", "model": "tiny-bert", "method": "scale",
              "tasks": [{"name": "overflow", "kind": "binary", "source": "tab-lines",
                         "path": str(tmp_path / "tasks.tsv")}],
              "baselines": ["trivial"], "train": {"epochs": 1, "batch_size": 8, "max_length": 32, "precision": "fp32"},
              "output_dir": str(tmp_path / "run")}
    done = subprocess.run([sys.executable, "-c", TRAIN, str(tmp_path), json.dumps(config)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    ledger = json.loads((tmp_path / "run" / "ledger.json").read_text())
    backbone = load_backbone("tiny-bert").model
    scaled = sum(m.out_features for n, m in backbone.named_modules()
                 if isinstance(m, nn.Linear) and (n.endswith(".value") or n.endswith("output.dense")))
    assert ledger["parameters"]["backbone"] == sum(p.numel() for p in backbone.parameters())
    assert ledger["parameters"]["method_trainable"] == scaled
    assert ledger["run_info"]["method"] == "scale"
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert "accuracy" in metrics["tasks"]["overflow"]["test"]


class _Args(MethodConfig):
    dim: int = Field(4, description="unused")


class _Forgetful(Method):
    """Adds parameters under a prefix other than the one it declares."""

    name = "forgetful"
    config_class = _Args
    parameter_markers = ("declared_",)

    def inject(self, backbone):
        freeze(backbone.model)
        for name in find_targets(backbone.model, ["value"], self.name, "target_modules"):
            base = backbone.model.get_submodule(name)
            wrapped = nn.Sequential(base)
            wrapped.register_parameter("extra_gain", nn.Parameter(torch.ones(1)))
            set_submodule(backbone.model, name, wrapped)
        return backbone.model

    def save(self, encoder, backbone, directory):
        raise NotImplementedError

    def load(self, backbone, directory):
        raise NotImplementedError


def test_a_method_whose_markers_miss_its_parameters_is_stopped_before_training():
    backbone = load_backbone("tiny-bert")
    own = {id(p) for p in backbone.model.parameters()}
    method = _Forgetful()
    with pytest.raises(TypeError, match=r"miss parameters it added.*extra_gain"):
        check_added_parameters(method, method.inject(backbone), own)


def test_a_method_that_stores_an_adapter_must_declare_its_markers():
    unmarked = type("Unmarked", (_Forgetful,), {"name": "unmarked", "parameter_markers": ()})
    with pytest.raises(TypeError, match="declares no parameter_markers"):
        register_method(unmarked)
