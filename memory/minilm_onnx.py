"""all-MiniLM-L6-v2 on ONNX Runtime: tokenizers + onnxruntime only, from a graph prepared from the verified weights."""

from __future__ import annotations

import base64
import json
import logging
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from memory.embeddings import MINILM_NAME, MINILM_SHA256, minilm_model_dir, sha256_of
from sources.errors import StoreError

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)

Variant = Literal["fp32", "int8"]
VARIANTS: tuple[Variant, ...] = ("fp32", "int8")
# sentence-transformers' max_seq_length for this model (sentence_bert_config.json): longer texts are cut there.
MAX_TOKENS = 256
# How close a prepared model's probe vectors must be to the torch reference vectors (cosine). fp32 reproduces
# torch to float rounding; dynamic int8 quantisation drifts, so its bound is looser (measured: see README).
PROBE_BOUND: dict[Variant, float] = {"fp32": 0.9999, "int8": 0.85}
PREPARE_HINT = "run `tapewatch model prepare`"


def embedder_name(variant: Variant) -> str:
    """The name a collection records: vectors of different variants never share a collection."""
    return f"{MINILM_NAME}/onnx" if variant == "fp32" else f"{MINILM_NAME}/onnx-{variant}"


def model_file(model_dir: Path, variant: Variant) -> Path:
    """Where the prepared ONNX graph of ``variant`` lives."""
    return model_dir / f"minilm-{variant}.onnx"


def manifest_file(model_dir: Path, variant: Variant) -> Path:
    """The JSON record written last by a successful prepare: the graph's sha256 and what it was made from."""
    return model_dir / f"minilm-{variant}.json"


@dataclass(frozen=True)
class Prepared:
    """A prepared graph and the sha256 its manifest records."""

    path: Path
    sha256: str


def read_manifest(model_dir: Path, variant: Variant) -> Prepared | None:
    """The prepared model of ``variant`` per its manifest, or None when it was never (completely) prepared."""
    manifest = manifest_file(model_dir, variant)
    if not manifest.is_file():
        return None
    try:
        data = json.loads(manifest.read_text())
        digest, weights = str(data["sha256"]), str(data["weights_sha256"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise StoreError(f"the model manifest {manifest} is unreadable ({exc}); {PREPARE_HINT} --force") from exc
    if weights != MINILM_SHA256:
        raise StoreError(f"the ONNX model in {model_dir} was made from other weights (sha256 {weights}); "
                         f"{PREPARE_HINT} --force")
    return Prepared(model_file(model_dir, variant), digest)


def verify_prepared(prepared: Prepared) -> None:
    """Raise ``StoreError`` unless the graph file has the sha256 recorded when it was prepared."""
    if not prepared.path.is_file():
        raise StoreError(f"the ONNX model {prepared.path} is missing; {PREPARE_HINT} --force")
    actual = sha256_of(prepared.path)
    if actual != prepared.sha256:
        raise StoreError(f"the ONNX model {prepared.path} has sha256 {actual}, expected {prepared.sha256} as "
                         f"prepared; refusing to load it ({PREPARE_HINT} --force)")


def prepare_in_subprocess(model_dir: Path, variant: Variant, weights_dir: Path | None = None) -> None:
    """Export the graph in a child process, so torch never enters this one (its memory would stay)."""
    command = [sys.executable, "-m", "memory.minilm_export", str(model_dir), "--variant", variant]
    if weights_dir is not None:
        command += ["--weights", str(weights_dir)]
    log.warning("preparing the %s ONNX model in %s from the verified weights (once; `tapewatch model prepare` "
                "does this at install)", variant, model_dir)
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=1800, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise StoreError(f"cannot prepare the ONNX model ({exc}); {PREPARE_HINT}") from exc
    if done.returncode != 0:
        lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
        raise StoreError(f"preparing the ONNX model in {model_dir} failed: "
                         f"{lines[-1] if lines else f'exit {done.returncode}'}; {PREPARE_HINT}")


def reference_probes() -> tuple[list[str], np.ndarray]:
    """The probe texts and their torch (sentence-transformers) vectors, stored with the project."""
    import numpy as np

    from memory.minilm_probes import PROBE_TEXTS, PROBE_VECTORS_B64

    vectors = np.frombuffer(base64.b64decode(PROBE_VECTORS_B64), dtype="<f4").reshape(len(PROBE_TEXTS), -1)
    return list(PROBE_TEXTS), vectors


def check_probes(embedder: OnnxMiniLMEmbedder, variant: Variant) -> float:
    """The minimum probe cosine against the torch reference; ``StoreError`` when below the variant's bound."""
    import numpy as np

    texts, reference = reference_probes()
    cosine = float(np.min(np.sum(embedder.embed_unchecked(texts) * reference, axis=1)))
    if cosine < PROBE_BOUND[variant]:
        raise StoreError(f"the {variant} ONNX model drifts from the reference vectors (min cosine {cosine:.6f} < "
                         f"{PROBE_BOUND[variant]}); refusing to use it ({PREPARE_HINT} --force)")
    return cosine


class OnnxMiniLMEmbedder:
    """all-MiniLM-L6-v2 through onnxruntime: mean pooling over the attention mask, L2-normalised, length-batched."""

    dimension = 384

    def __init__(self, model_dir: Path, variant: Variant = "fp32", threads: int | None = None,
                 batch_size: int = 64, weights_dir: Path | None = None, prepare: bool = True,
                 batch_tokens: int = 1024) -> None:
        self.name = embedder_name(variant)
        self.variant: Variant = variant
        self._model_dir = model_dir
        self._weights_dir = weights_dir
        self._threads = threads
        self._batch_size = batch_size
        # Padded tokens per batch: attention's memory grows with rows x width², and onnxruntime's arena keeps its
        # high-water mark, so long texts go in small batches (measured: 64 x 256 tokens peaks at 1.2 GB, 4 x 256
        # at 240 MB, at the same speed).
        self._batch_tokens = batch_tokens
        self._prepare = prepare
        self._session: Any = None
        self._tokenizer: Any = None
        self._lock = threading.Lock()

    def _load(self) -> None:
        with self._lock:
            if self._session is not None:
                return
            prepared = read_manifest(self._model_dir, self.variant)
            if prepared is None:
                if not self._prepare:
                    raise StoreError(f"no {self.variant} ONNX model in {self._model_dir}; {PREPARE_HINT}")
                prepare_in_subprocess(self._model_dir, self.variant, self._weights_dir)
                prepared = read_manifest(self._model_dir, self.variant)
                if prepared is None:
                    raise StoreError(f"preparing the ONNX model left no manifest in {self._model_dir}")
            verify_prepared(prepared)
            import onnxruntime as ort
            from tokenizers import Tokenizer

            options = ort.SessionOptions()
            if self._threads:
                options.intra_op_num_threads = self._threads
            options.inter_op_num_threads = 1
            options.enable_mem_pattern = False  # shapes change every batch; a planned pattern only adds peak memory
            # Prepacked copies of the MatMul weights cost ~30 MB resident and, measured here, no CPU time per batch.
            options.add_session_config_entry("session.disable_prepacking", "1")
            # Idle intra-op threads sleep instead of spinning. Measured on 2 cores shared with other work (load 5):
            # spinning threads fight the busy ones, and one query took 40 ms instead of 10, a batch ran at 52 texts/s
            # instead of 91; the daemon shares its machine with Chroma, the web desk and the state DB.
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            options.log_severity_level = 3
            tokenizer = Tokenizer.from_file(str((self._weights_dir or minilm_model_dir()) / "tokenizer.json"))
            tokenizer.no_padding()  # padding is per batch, to the batch's longest text
            tokenizer.enable_truncation(MAX_TOKENS)
            try:
                session = ort.InferenceSession(str(prepared.path), sess_options=options,
                                               providers=["CPUExecutionProvider"])
            except Exception as exc:  # onnxruntime raises its own exception types for a broken graph
                raise StoreError(f"onnxruntime cannot load {prepared.path}: {exc}; {PREPARE_HINT} --force") from exc
            self._tokenizer, self._session = tokenizer, session
            try:
                # Before first use: a graph that drifts from the reference is refused, never silently used.
                check_probes(self, self.variant)
            except StoreError:
                self._session = None
                raise

    def embed(self, texts: list[str]) -> np.ndarray:
        """Embed texts as normalised float32 vectors."""
        import numpy as np

        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        self._load()
        return self.embed_unchecked(texts)

    def intra_op_threads(self) -> int:
        """The intra-op thread count the loaded session runs with (0: onnxruntime's default, every core)."""
        self._load()
        return int(self._session.get_session_options().intra_op_num_threads)

    def embed_unchecked(self, texts: list[str]) -> np.ndarray:
        """Embed with the loaded session (the probe check itself runs through here)."""
        import numpy as np

        if len(texts) == 1:
            return self._embed_one(texts[0])
        encodings = self._tokenizer.encode_batch(texts)
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        # Similar lengths batched together: padding costs compute, and a short text beside a long one pays it all.
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        start = 0
        while start < len(order):
            # Sorted ascending, so the last row of a batch is its widest: grow the batch while it fits the budget.
            end = start + 1
            while (end < len(order) and end - start < self._batch_size
                   and (end - start + 1) * len(encodings[order[end]].ids) <= self._batch_tokens):
                end += 1
            rows, start = order[start:end], end
            width = len(encodings[rows[-1]].ids)
            ids = np.zeros((len(rows), width), dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            types = np.zeros((len(rows), width), dtype=np.int64)
            for r, i in enumerate(rows):
                n = len(encodings[i].ids)
                ids[r, :n], mask[r, :n], types[r, :n] = encodings[i].ids, 1, encodings[i].type_ids
            hidden = self._session.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": types})[0]
            weights = mask[:, :, None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
            pooled /= np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
            out[rows] = pooled
        return out

    def _embed_one(self, text: str) -> np.ndarray:
        """One text (a search query): no batch planning, no padding, every token attended, so pooling is a mean."""
        import numpy as np

        encoding = self._tokenizer.encode(text)
        ids = np.asarray([encoding.ids], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids),
                 "token_type_ids": np.asarray([encoding.type_ids], dtype=np.int64)}
        pooled = self._session.run(None, feeds)[0][0].mean(axis=0, dtype=np.float32)
        pooled /= max(float(np.linalg.norm(pooled)), 1e-12)
        return pooled[None, :].astype(np.float32, copy=False)
