"""Encoders: the local default is deterministic and normalised; the LiteLLM encoder talks to an
OpenAI-compatible server on 127.0.0.1; the Lee-corpus correlation is measured, not assumed."""

from __future__ import annotations

import numpy as np

from bench.encoders import load_lee, pearson
from learnflow.stores.encoders import HashingProjectionEncoder, LiteLLMEncoder
from tests.grpc.openai_server import EMBED_DIM, OpenAIServer, fake_embedding


def test_local_encoder_is_deterministic_and_normalised():
    a = HashingProjectionEncoder().encode(["differential equations", "", "linear algebra"])
    b = HashingProjectionEncoder().encode(["differential equations", "", "linear algebra"])
    assert a.shape == (3, 768) and np.array_equal(a, b)
    assert np.isclose(np.linalg.norm(a[0]), 1.0) and not a[1].any()


def test_local_encoder_on_the_lee_corpus():
    docs, human, _ = load_lee()
    assert len(docs) == 50 and human.shape == (50, 50)
    score = pearson(HashingProjectionEncoder().encode(docs), human)
    # Measured 0.17 (bench.encoders): far below TF-IDF's 0.56. Kept as a regression floor.
    assert 0.1 < score < 0.5, score


def test_litellm_encoder_against_a_local_openai_server():
    with OpenAIServer() as server:
        enc = LiteLLMEncoder("openai/local-embed", api_base=server.api_base, api_key="k")
        assert enc.dim == EMBED_DIM
        vectors = enc.encode(["phase portraits", "laplace transform"])
        expected = np.array(fake_embedding("laplace transform"), dtype=np.float32)
        assert np.allclose(vectors[1], expected / np.linalg.norm(expected), atol=1e-6)
        paths = [r["path"] for r in server.requests]
        assert paths and all(p == "/v1/embeddings" for p in paths)
        assert server.requests[-1]["body"]["input"] == ["phase portraits", "laplace transform"]
