"""User text is text, never query syntax: every kind of awkward query through gRPC, in every
mode, on both keyword backends (issue #15; issue #18 row 1). Each answers (no UNAVAILABLE, no
INTERNAL), and a quoted phrase still means a phrase."""

from __future__ import annotations

import grpc
import pytest

from search_service.pb import search_pb2 as pb
from search_service.pb import search_pb2_grpc
from tests.search.test_search_service import DIFF_EQ, address, backend, channel, stub

__all__ = ["address", "backend", "channel", "stub"]  # the per-backend fixtures, shared

pytestmark = [pytest.mark.grpc, pytest.mark.temporal, pytest.mark.postgres]

AWKWARD = [
    "women's leadership", '"women\'s leadership"', "Newton's laws", "Newton’s laws", "'", '"',
    '""', '"unbalanced quote', "AND", "OR", "NOT", "a AND", "OR b", "AND OR NOT", "id:>5",
    "title:differential", "x >= 5", "`", "`rm -rf`", "(differential", "equations)",
    "[1 TO 5]", "{a TO b}", "*", "differ*", "~", "equations~2", '"differential equations"~3',
    "a^2", "^", "\\", "C++", "C#", "+-&&||!", "?", "/regex.*/", "<script>alert(1)</script>",
    "100%", "@#$", "🎉", "differential equations 🚀📚", "日本語の授業", "\u200b", "-differential",
    "differential -equations", "a\tb\nc", "'; DROP TABLE learning_resource; --",
    "differential " * 800,  # 10 kB of words (far over the engines' word cap)
    "equations," * 1000,  # 10 kB without a space
    ("x" * 10_000),  # one 10 kB word
]  # fmt: skip
KEYWORD_MODES = [
    pb.KEYWORD_SEARCH_MODE_UNSPECIFIED,
    pb.KEYWORD_SEARCH_MODE_PHRASE,
    pb.KEYWORD_SEARCH_MODE_BEST_FIELDS,
    pb.KEYWORD_SEARCH_MODE_MOST_FIELDS,
]
MODES = [pb.SEARCH_MODE_UNSPECIFIED, pb.SEARCH_MODE_KEYWORD, pb.SEARCH_MODE_VECTOR,
         pb.SEARCH_MODE_HYBRID]  # fmt: skip


def _resource_requests():
    for text in AWKWARD:
        for mode in MODES:
            for kmode in KEYWORD_MODES:
                yield pb.SearchResourcesRequest(
                    query=text,
                    mode=mode,
                    keyword_options=pb.KeywordOptions(search_mode=kmode),
                    facets=["resource_type"],
                )


@pytest.fixture(scope="module")
def answers_address(request, backend, seeded) -> str:
    """The service with an LLM double for this backend (StreamAnswer's vector context)."""
    if backend == "embedded":
        return request.getfixturevalue("answer_address")
    return request.getfixturevalue("opensearch_service").address


async def _answers(call, what: str):
    try:
        return await call
    except grpc.aio.AioRpcError as exc:
        pytest.fail(f"{what}: {exc.code().name} {exc.details()}")


async def test_awkward_text_answers_in_every_mode(stub, seeded):
    failures = []
    for req in _resource_requests():
        try:
            resp = await stub.SearchResources(req, timeout=30)
        except grpc.aio.AioRpcError as exc:
            failures.append((req.query[:40], req.mode, req.keyword_options.search_mode, exc.code()))
            continue
        assert resp.total >= len(resp.results)
        # the keyword side answered too (hybrid would hide its failure behind the vector side)
        assert not resp.unavailable, (req.query[:40], req.mode, list(resp.unavailable))
    assert not failures, failures[:10]
    # text that is only syntax-looking characters still finds what its words say
    found = await stub.SearchResources(
        pb.SearchResourcesRequest(
            query="(differential AND equations) OR title:calculus~",
            keyword_options=pb.KeywordOptions(search_mode=pb.KEYWORD_SEARCH_MODE_BEST_FIELDS),
        ),
        timeout=10,
    )
    assert DIFF_EQ in {r.resource.readable_id for r in found.results}


async def test_awkward_text_answers_in_content_files_autocomplete_and_answers(
    answers_address, stub, seeded
):
    failures = []
    for text in AWKWARD:
        for mode in MODES:
            try:
                await stub.SearchContentFiles(
                    pb.SearchContentFilesRequest(query=text, mode=mode, facets=["content_type"]),
                    timeout=30,
                )
            except grpc.aio.AioRpcError as exc:
                failures.append(("content", text[:40], mode, exc.code()))
        try:
            await stub.Autocomplete(pb.AutocompleteRequest(prefix=text[:100]), timeout=10)
        except grpc.aio.AioRpcError as exc:
            if not text[:100].strip() or exc.code() != grpc.StatusCode.INVALID_ARGUMENT:
                failures.append(("autocomplete", text[:40], exc.code()))
    assert not failures, failures[:10]
    async with grpc.aio.insecure_channel(answers_address) as ch:
        answers = search_pb2_grpc.SearchServiceStub(ch)
        for text in AWKWARD:
            question = text[:2000].strip()
            if not question:
                continue
            events = [
                m
                async for m in answers.StreamAnswer(
                    pb.StreamAnswerRequest(question=question, context_size=2), timeout=30
                )
            ]
            assert events[-1].WhichOneof("event") == "citations", text[:40]


async def test_a_quoted_phrase_is_still_a_phrase(stub, seeded):
    def titles(resp):
        return {r.resource.readable_id for r in resp.results}

    for mode, kmode in [(m, k) for m in MODES if m != pb.SEARCH_MODE_VECTOR for k in KEYWORD_MODES]:
        opts = pb.KeywordOptions(search_mode=kmode)
        exact = await _answers(
            stub.SearchResources(
                pb.SearchResourcesRequest(
                    query='"differential equations"', mode=mode, keyword_options=opts
                ),
                timeout=10,
            ),
            "quoted",
        )
        assert DIFF_EQ in titles(exact), (mode, kmode)
        # the same words quoted in the other order: no document has that phrase
        reversed_ = await _answers(
            stub.SearchResources(
                pb.SearchResourcesRequest(
                    query='"equations differential"', mode=mode, keyword_options=opts
                ),
                timeout=10,
            ),
            "reversed",
        )
        assert DIFF_EQ not in titles(reversed_), (mode, kmode)
    # unquoted, best_fields matches the words in any order
    loose = await stub.SearchResources(
        pb.SearchResourcesRequest(
            query="equations differential",
            mode=pb.SEARCH_MODE_KEYWORD,
            keyword_options=pb.KeywordOptions(search_mode=pb.KEYWORD_SEARCH_MODE_BEST_FIELDS),
        ),
        timeout=10,
    )
    assert DIFF_EQ in titles(loose)
    # an apostrophe is text: a possessive matches the word without it
    possessive = await stub.SearchResources(
        pb.SearchResourcesRequest(
            query="equation's differential",
            mode=pb.SEARCH_MODE_KEYWORD,
            keyword_options=pb.KeywordOptions(search_mode=pb.KEYWORD_SEARCH_MODE_BEST_FIELDS),
        ),
        timeout=10,
    )
    assert DIFF_EQ in titles(possessive)
