"""The ONNX graphs, made once from the verified safetensors (no torch): ``python -m memory.minilm_export``."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from memory.embeddings import MINILM_SHA256, minilm_model_dir, sha256_of, verify_weights
from memory.minilm_graph import OPSET, build_encoder
from memory.minilm_onnx import (
    PROBE_BOUND,
    OnnxMiniLMEmbedder,
    Prepared,
    Variant,
    check_probes,
    manifest_file,
    model_file,
    read_manifest,
)
from sources.errors import StoreError, TapewatchError


def _quantize_int8(source: Path, target: Path) -> None:
    """Dynamic int8 quantisation of the fp32 graph's weights (activations stay float)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # It advises pre-processing on the root logger; for a transformer's MatMul weights that changes nothing.
    logging.disable(logging.WARNING)
    try:
        quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8)
    finally:
        logging.disable(logging.NOTSET)


def prepare(model_dir: Path, variant: Variant, weights_dir: Path | None = None, force: bool = False) -> Prepared:
    """The prepared graph of ``variant`` in ``model_dir``, made from the sha256-checked weights when missing."""
    weights_dir = weights_dir or minilm_model_dir()
    verify_weights(weights_dir / "model.safetensors")
    existing = None if force else read_manifest(model_dir, variant)
    if existing is not None:
        OnnxMiniLMEmbedder(model_dir, variant, weights_dir=weights_dir, prepare=False).embed(["ok"])
        return existing
    model_dir.mkdir(parents=True, exist_ok=True)
    manifest_file(model_dir, variant).unlink(missing_ok=True)  # the manifest goes last: no manifest, not prepared
    target = model_file(model_dir, variant)
    partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
    try:
        if variant == "fp32":
            build_encoder(weights_dir, partial)
        else:
            source = prepare(model_dir, "fp32", weights_dir)
            _quantize_int8(source.path, partial)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    prepared = Prepared(target, sha256_of(target))
    record = {"sha256": prepared.sha256, "weights_sha256": MINILM_SHA256, "variant": variant, "opset": OPSET,
              "built_by": "memory.minilm_graph",
              "probe_bound": PROBE_BOUND[variant]}
    written = manifest_file(model_dir, variant)
    staged = written.with_name(f"{written.name}.{os.getpid()}.partial")
    staged.write_text(json.dumps(record, indent=2) + "\n")
    os.replace(staged, written)
    try:
        embedder = OnnxMiniLMEmbedder(model_dir, variant, weights_dir=weights_dir, prepare=False)
        embedder.embed(["ok"])
        record["probe_min_cosine"] = check_probes(embedder, variant)
    except StoreError:
        written.unlink(missing_ok=True)
        raise
    staged.write_text(json.dumps(record, indent=2) + "\n")
    os.replace(staged, written)
    return prepared


def main(argv: list[str] | None = None) -> int:
    """Prepare one variant; errors are one line on stderr (exit 1)."""
    parser = argparse.ArgumentParser(prog="python -m memory.minilm_export", description=__doc__)
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("--variant", choices=["fp32", "int8"], default="fp32")
    parser.add_argument("--weights", type=Path, default=None, help="model directory (default: the package's)")
    parser.add_argument("--force", action="store_true")
    args = parser.parse_args(argv)
    try:
        prepare(args.model_dir, args.variant, args.weights, args.force)
    except (TapewatchError, OSError) as exc:  # OSError: e.g. a model dir this user cannot write
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
