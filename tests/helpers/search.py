"""Paging through a SearchResources answer the way a client does: next_page_token until none."""

from __future__ import annotations

from typing import Any

MAX_PAGES = 50
RPC_SECONDS = 10


async def every_page(stub: Any, request: Any) -> list[Any]:
    """Every page's response, first to last (the request's page_token is advanced in place)."""
    pages = []
    for _ in range(MAX_PAGES):
        pages.append(await stub.SearchResources(request, timeout=RPC_SECONDS))
        if not pages[-1].next_page_token:
            return pages
        request.page_token = pages[-1].next_page_token
    raise AssertionError(f"more than {MAX_PAGES} pages")
