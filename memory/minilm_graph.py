"""The BERT encoder of all-MiniLM-L6-v2 as an ONNX graph, built node by node from the verified safetensors.

No torch: the weights are read with safetensors' numpy loader and become the graph's initializers. The graph
takes ``input_ids``, ``attention_mask`` and ``token_type_ids`` (int64, batch x tokens) and returns the last hidden
state (float32, batch x tokens x 384); mean pooling and normalisation stay in ``memory.minilm_onnx``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sources.errors import StoreError

if TYPE_CHECKING:
    import numpy as np

OPSET = 17  # LayerNormalization is an operator from 17 on; onnxruntime's optimiser fuses attention and GELU
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
OUTPUT = "last_hidden_state"


@dataclass(frozen=True)
class BertShape:
    """What ``config.json`` says about the encoder's sizes."""

    hidden: int
    heads: int
    layers: int
    eps: float

    @classmethod
    def from_config(cls, path: Path) -> BertShape:
        """Read a BERT ``config.json``; refuse what this builder does not implement."""
        try:
            config = json.loads(path.read_text())
            shape = cls(int(config["hidden_size"]), int(config["num_attention_heads"]),
                        int(config["num_hidden_layers"]), float(config["layer_norm_eps"]))
            act, positions = config.get("hidden_act", "gelu"), config.get("position_embedding_type", "absolute")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise StoreError(f"cannot read the model config {path}: {exc}") from exc
        if act != "gelu" or positions != "absolute" or shape.hidden % shape.heads:
            raise StoreError(f"{path}: a BERT with hidden_act={act!r}, positions={positions!r} is not supported")
        return shape


class _Graph:
    """Nodes and initializers collected in order, with fresh names."""

    def __init__(self) -> None:
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self._count = 0

    def const(self, name: str, value: np.ndarray) -> str:
        from onnx import numpy_helper

        self.initializers.append(numpy_helper.from_array(value, name))
        return name

    def op(self, op_type: str, *inputs: str, **attrs: Any) -> str:
        from onnx import helper

        self._count += 1
        out = f"{op_type.lower()}_{self._count}"
        self.nodes.append(helper.make_node(op_type, list(inputs), [out], name=out, **attrs))
        return out


def build_encoder(weights_dir: Path, target: Path) -> None:
    """Write the encoder graph for the (already verified) weights in ``weights_dir`` to ``target``."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper
    from safetensors.numpy import load_file

    shape = BertShape.from_config(weights_dir / "config.json")
    weights = load_file(str(weights_dir / "model.safetensors"))
    head = shape.hidden // shape.heads
    g = _Graph()

    def w(key: str, transpose: bool = False) -> str:
        try:
            value = weights[key]
        except KeyError as exc:
            raise StoreError(f"the weights in {weights_dir} have no tensor {key!r}") from exc
        return g.const(key, np.ascontiguousarray(value.T if transpose else value, dtype=np.float32))

    def linear(x: str, prefix: str) -> str:
        # torch's Linear keeps its weight as (out, in); MatMul wants (in, out).
        return g.op("Add", g.op("MatMul", x, w(f"{prefix}.weight", transpose=True)), w(f"{prefix}.bias"))

    def layer_norm(x: str, prefix: str) -> str:
        return g.op("LayerNormalization", x, w(f"{prefix}.weight"), w(f"{prefix}.bias"), axis=-1, epsilon=shape.eps)

    i64 = lambda name, *values: g.const(name, np.array(values, dtype=np.int64))  # noqa: E731
    f32 = lambda name, value: g.const(name, np.array(value, dtype=np.float32))  # noqa: E731
    zero, one = g.const("zero", np.array(0, dtype=np.int64)), g.const("one", np.array(1, dtype=np.int64))
    split_heads, merge_heads = i64("split_heads", 0, 0, shape.heads, head), i64("merge_heads", 0, 0, shape.hidden)

    # Embeddings: words + positions (0..tokens-1) + token types, then LayerNorm.
    tokens = g.op("Gather", g.op("Shape", "input_ids"), one, axis=0)
    positions = g.op("Range", zero, tokens, one)
    x = g.op("Add", g.op("Add", g.op("Gather", w("embeddings.word_embeddings.weight"), "input_ids", axis=0),
                         g.op("Gather", w("embeddings.position_embeddings.weight"), positions, axis=0)),
             g.op("Gather", w("embeddings.token_type_embeddings.weight"), "token_type_ids", axis=0))
    x = layer_norm(x, "embeddings.LayerNorm")

    # Padding is masked as transformers does it: (1 - mask) x the float32 minimum, added before the softmax.
    keep = g.op("Cast", "attention_mask", to=TensorProto.FLOAT)
    f_one = f32("f_one", 1.0)
    bias = g.op("Mul", g.op("Sub", f_one, keep), f32("f_min", float(np.finfo(np.float32).min)))
    bias = g.op("Unsqueeze", bias, i64("mask_axes", 1, 2))  # batch x 1 x 1 x tokens
    scale = f32("scale", 1.0 / float(np.sqrt(head)))
    sqrt2, half = f32("sqrt2", float(np.sqrt(2.0))), f32("half", 0.5)

    for n in range(shape.layers):
        p = f"encoder.layer.{n}"

        def heads(y: str, perm: list[int]) -> str:
            return g.op("Transpose", g.op("Reshape", y, split_heads), perm=perm)

        q = heads(linear(x, f"{p}.attention.self.query"), [0, 2, 1, 3])  # batch x heads x tokens x head
        k = heads(linear(x, f"{p}.attention.self.key"), [0, 2, 3, 1])  # batch x heads x head x tokens
        v = heads(linear(x, f"{p}.attention.self.value"), [0, 2, 1, 3])
        scores = g.op("Add", g.op("Mul", g.op("MatMul", q, k), scale), bias)
        context = g.op("MatMul", g.op("Softmax", scores, axis=-1), v)
        context = g.op("Reshape", g.op("Transpose", context, perm=[0, 2, 1, 3]), merge_heads)
        attended = g.op("Add", linear(context, f"{p}.attention.output.dense"), x)
        x = layer_norm(attended, f"{p}.attention.output.LayerNorm")
        h = linear(x, f"{p}.intermediate.dense")
        # The exact GELU BERT was trained with: x * (1 + erf(x / sqrt 2)) / 2.
        h = g.op("Mul", g.op("Mul", h, g.op("Add", f_one, g.op("Erf", g.op("Div", h, sqrt2)))), half)
        x = layer_norm(g.op("Add", linear(h, f"{p}.output.dense"), x), f"{p}.output.LayerNorm")
    g.nodes.append(helper.make_node("Identity", [x], [OUTPUT], name=OUTPUT))

    inputs = [helper.make_tensor_value_info(name, TensorProto.INT64, ["batch", "tokens"]) for name in INPUTS]
    output = helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, ["batch", "tokens", shape.hidden])
    graph = helper.make_graph(g.nodes, "minilm_encoder", inputs, [output], initializer=g.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="tapewatch")
    model.ir_version = 8  # what opset 17 needs; onnxruntime reads it
    onnx.checker.check_model(model)
    onnx.save_model(model, str(target))
