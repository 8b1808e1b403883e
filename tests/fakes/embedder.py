"""A fast, deterministic embedding stand-in: hashed word unigrams and bigrams.

Texts sharing many words get similar vectors, which is enough to exercise near-duplicate
linking and search plumbing without loading a model. One test module uses the real MiniLM.
"""

from __future__ import annotations

import hashlib
import itertools
import re

import numpy as np

_WORD = re.compile(r"[a-z0-9$]+")


class HashEmbedder:
    """Bag-of-words hashed into a fixed number of dimensions, L2-normalised."""

    name = "test-hash"

    def __init__(self, dimension: int = 384) -> None:
        self.dimension = dimension
        self.calls = 0

    def embed(self, texts: list[str]) -> np.ndarray:
        self.calls += 1
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            words = _WORD.findall(text.lower())
            for token in words + [f"{a} {b}" for a, b in itertools.pairwise(words)]:
                digest = hashlib.blake2b(token.encode(), digest_size=8).digest()
                index = int.from_bytes(digest[:4], "little") % self.dimension
                sign = 1.0 if digest[4] & 1 else -1.0
                out[row, index] += sign
            norm = np.linalg.norm(out[row])
            if norm:
                out[row] /= norm
        return out
