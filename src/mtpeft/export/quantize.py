"""int8 dynamic quantisation of an exported graph (ONNX Runtime's ``quantize_dynamic``), backbone only.

What is quantised is chosen node by node: the matrix products of the backbone whose second operand is a weight
(the linear layers, nearly all of the FLOPs), with one int8 scale per output channel. Kept in fp32: the task heads
(small, and where a threshold or a ranking is decided), the attention products of two activations, embeddings,
normalisation and pooling. ``reduce_range`` keeps weights to 7 bits: on CPUs without VNNI, int8 x uint8 products
saturate their 16-bit intermediate sums, and ONNX Runtime recommends it there, especially per channel.
"""

from __future__ import annotations

import logging
from pathlib import Path

from mtpeft.errors import ModelError
from mtpeft.export.manifest import Quantization

LARGE = 2**31 - 2**26  # bytes: past about 2 GB a graph's weights must live in a file of their own
HEADS_SCOPE = "model.heads."  # ServingGraph.model.heads: the exporter names each node's module scope


def quantize_int8(source: Path, target: Path, per_channel: bool = True, reduce_range: bool = True) -> Quantization:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model = onnx.load(str(source))
    # the exporter's recorded intermediate shapes can contradict ONNX's own inference, which quantisation reruns
    del model.graph.value_info[:]
    weights = {init.name for init in model.graph.initializer}
    weights |= {out for node in model.graph.node if node.op_type == "Constant" for out in node.output}
    products = [n for n in model.graph.node if n.op_type in ("MatMul", "Gemm")]
    heads = [n.name for n in products if HEADS_SCOPE in _scope(n)]
    if not heads:
        raise ModelError(f"{source}: cannot tell the task heads' nodes from the backbone's (no module scopes in the "
                         "graph), so they cannot be kept in fp32; export without --quantize")
    chosen = [n.name for n in products if n.name not in heads and any(i in weights for i in n.input[1:])]
    # ONNX Runtime logs advice to pre-process (shape inference, fusions) on every call; the graph is quantised as
    # exported, whose node scopes are what tell the heads apart
    logging.getLogger().addFilter(_no_preprocessing_advice)
    try:
        quantize_dynamic(model, target, op_types_to_quantize=["MatMul", "Gemm"], nodes_to_quantize=chosen,
                         per_channel=per_channel, reduce_range=reduce_range, weight_type=QuantType.QInt8,
                         use_external_data_format=source.stat().st_size > LARGE,
                         extra_options={"MatMulConstBOnly": True})
    finally:
        logging.getLogger().removeFilter(_no_preprocessing_advice)
    return Quantization(method="onnxruntime.quantization.quantize_dynamic", weight_type="int8",
                        activations="uint8, scaled per batch at run time", per_channel=per_channel,
                        reduce_range=reduce_range, quantized_nodes=len(chosen),
                        kept_fp32=[f"the task heads ({len(heads)} matrix products)",
                                   f"{len(products) - len(heads) - len(chosen)} products of two activations "
                                   "(attention scores and values, window pooling)",
                                   "embeddings, normalisation, softmax, pooling"])


def _scope(node: object) -> str:
    return next((p.value for p in node.metadata_props if p.key == "namespace"), "")  # type: ignore[attr-defined]


def _no_preprocessing_advice(record: logging.LogRecord) -> bool:
    return "pre-processing before quantization" not in record.getMessage()
