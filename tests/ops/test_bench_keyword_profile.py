"""`bench.keyword_profile` times every piece of a keyword answer on a built corpus."""

from bench.corpus import QUERIES, generate
from bench.keyword_profile import profile
from learnflow.stores.tantivy_index import TantivyKeywordIndex


def test_profile_times_each_piece_of_a_built_corpus(tmp_path):
    TantivyKeywordIndex(tmp_path / "keyword")._upsert_sync(generate(300))

    result = profile(tmp_path / "keyword", rounds=1, queries=QUERIES[:2])

    pieces = result["cpu_ms_per_query"]
    assert "answer (_search_sync)" in pieces
    assert "answer, tantivy only (no hot-term columns)" in pieces
    assert all(ms >= 0 for ms in pieces.values()), pieces
    assert result["meta"]["docs"] == 300
    assert 0 < result["meta"]["matches_of_first_query"] <= 300
