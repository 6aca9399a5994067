"""AI answers: a prompt from vector-retrieved resources, a streamed LLM call through LiteLLM, and
the resource ids the answer cited (`[<id>]` markers the prompt asks for)."""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

CITATION = re.compile(r"\[(\d{1,18})\]")
CONTEXT_CHARS = 600  # per resource: title + start of the description

SYSTEM_PROMPT = (
    "You are MIT Learn's assistant. Answer the question using only the learning resources "
    "listed below. Cite every resource you use with its id in square brackets, like [123]. "
    "If none of them answers the question, say so."
)


@dataclass
class LLMConfig:
    model: str
    api_base: str | None = None
    api_key: str | None = None


def build_messages(question: str, documents: list[dict]) -> list[dict[str, str]]:
    lines = []
    for doc in documents:
        text = f"{doc.get('title', '')}: {doc.get('description') or ''}".strip()
        lines.append(f"[{doc['id']}] {text[:CONTEXT_CHARS]}")
    context = "\n".join(lines) or "(no resources found)"
    return [
        {"role": "system", "content": f"{SYSTEM_PROMPT}\n\nResources:\n{context}"},
        {"role": "user", "content": question},
    ]


def cited_ids(answer: str, context_ids: list[int]) -> list[int]:
    """Ids cited in the answer that were in the context, in order of first citation."""
    allowed = set(context_ids)
    out: list[int] = []
    for match in CITATION.finditer(answer):
        rid = int(match.group(1))
        if rid in allowed and rid not in out:
            out.append(rid)
    return out


async def stream_completion(
    config: LLMConfig,
    messages: list[dict[str, str]],
    timeout: float,  # noqa: ASYNC109 - passed to LiteLLM
) -> AsyncIterator[str]:
    """Text deltas of a streamed chat completion."""
    # Without this, importing litellm fetches its model cost map from the network.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    response = await litellm.acompletion(
        model=config.model,
        messages=messages,
        stream=True,
        api_base=config.api_base,
        api_key=config.api_key or "none",
        timeout=timeout,
        max_retries=0,
    )
    async for chunk in response:
        choices = getattr(chunk, "choices", None) or []
        if not choices:
            continue
        delta = getattr(choices[0], "delta", None)
        text = getattr(delta, "content", None) if delta is not None else None
        if text:
            yield text
