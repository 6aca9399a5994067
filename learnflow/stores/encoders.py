"""Text encoders for the vector store.

The local default needs no download and no fit: hashed word and word-bigram counts (sublinear tf,
L2-normalised) projected to 256 dimensions by a fixed seeded random projection. It is
deterministic across processes and machines, so points written by one worker are comparable
with queries encoded by another, and re-encoding is never needed when the corpus grows.
Its quality is lexical (close to TF cosine); `QDRANT_ENCODER=litellm` gives semantic vectors.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Protocol

import numpy as np


class Encoder(Protocol):
    name: str
    dim: int

    def encode(self, texts: list[str]) -> np.ndarray: ...


class HashingProjectionEncoder:
    name = "hashproj256"

    def __init__(self, dim: int = 256, n_features: int = 2**18, seed: int = 20240611):
        from sklearn.feature_extraction.text import HashingVectorizer
        from sklearn.random_projection import SparseRandomProjection

        self.dim = dim
        self._vectorizer = HashingVectorizer(
            n_features=n_features,
            ngram_range=(1, 2),
            stop_words="english",
            alternate_sign=False,
            norm=None,
        )
        self._projection = SparseRandomProjection(
            n_components=dim, random_state=seed, dense_output=True
        )
        # Fitting a random projection only draws the seeded matrix from the input's shape.
        from scipy.sparse import csr_matrix

        self._projection.fit(csr_matrix((1, n_features), dtype=np.float64))
        # Keep the projection as a float32 CSR matrix: one sparse product per batch.
        self._matrix = self._projection.components_.T.astype(np.float32).tocsr()

    def encode(self, texts: list[str]) -> np.ndarray:
        counts = self._vectorizer.transform(texts).astype(np.float32)
        counts.data = 1.0 + np.log(counts.data)  # sublinear tf
        dense = np.asarray((counts @ self._matrix).todense(), dtype=np.float32)
        norms = np.linalg.norm(dense, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        return dense / norms


class LiteLLMEncoder:
    """Embeddings through LiteLLM (an OpenAI-compatible endpoint or any provider it knows)."""

    def __init__(
        self,
        model: str,
        api_base: str | None = None,
        api_key: str | None = None,
        dim: int | None = None,
    ):
        os.environ.setdefault(
            "LITELLM_LOCAL_MODEL_COST_MAP", "True"
        )  # else import calls the network
        self.model = model
        self.api_base = api_base
        self.api_key = api_key
        self.name = model.replace("/", "_")
        self.dim = dim or len(self.encode(["dimension probe"])[0])

    def encode(self, texts: list[str]) -> np.ndarray:
        import litellm

        response = litellm.embedding(
            model=self.model, input=texts, api_base=self.api_base, api_key=self.api_key or "none"
        )
        vectors = np.array([d["embedding"] for d in response["data"]], dtype=np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        return vectors / norms


@lru_cache(maxsize=4)
def get_encoder(
    kind: str = "local", model: str = "", api_base: str | None = None, api_key: str | None = None
) -> Encoder:
    if kind == "litellm":
        return LiteLLMEncoder(model, api_base, api_key)
    if kind == "local":
        return HashingProjectionEncoder()
    raise ValueError(f"unknown QDRANT_ENCODER {kind!r} (local | litellm)")
