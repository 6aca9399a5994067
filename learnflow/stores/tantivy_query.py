"""Text analysis and text queries for the embedded keyword engine (tantivy).

User text is never handed to tantivy's query parser: it is analysed here with the same analyzer
the index uses, and the query is built from the resulting terms (term, phrase and phrase-prefix
queries), so quotes, apostrophes, colons, brackets, `AND`/`OR`/`NOT`, `*`, `~` and emoji are
plain text. Modes follow OpenSearch's `multi_match`: phrase and best_fields take the best field
(dis_max), most_fields sums the fields.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import tantivy

from learnflow.stores.keyword import engine_text, fuzzy_distance, is_quoted

# The analyzer of the indexed text fields, registered under this name on every index: OpenSearch's
# `english` analyzer (possessive stemmer, lowercase, English stop words, English stemmer) on
# tantivy's simple tokenizer, with the possessive handled by `prepare` before tokenizing.
TEXT_TOKENIZER = "learn_english"
MAX_TOKEN_CHARS = 40  # tantivy's RemoveLong limit in its built-in analyzers
FUZZY_BOOST = 0.5  # a near spelling's flat score (tuned with bench.relevance's misspellings)


def _analyzer(*filters: tantivy.Filter) -> tantivy.TextAnalyzer:
    builder = tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
    for f in filters:
        builder = builder.filter(f)
    return builder.build()


# The tokenizer alone (lowercased): positions are counted over its tokens, as the index does.
WORDS = _analyzer(tantivy.Filter.lowercase())
# tantivy's built-in "default" (typeahead words).
DEFAULT = _analyzer(tantivy.Filter.remove_long(MAX_TOKEN_CHARS), tantivy.Filter.lowercase())
# The text fields. tantivy's English stop words are Lucene's, which OpenSearch's `_english_` is.
ENGLISH = _analyzer(
    tantivy.Filter.remove_long(MAX_TOKEN_CHARS),
    tantivy.Filter.lowercase(),
    tantivy.Filter.stopword("english"),
    tantivy.Filter.stemmer("english"),
)


def register(index: tantivy.Index) -> None:
    """Make TEXT_TOKENIZER known to an opened index (tantivy keeps custom analyzers in memory)."""
    index.register_tokenizer(TEXT_TOKENIZER, ENGLISH)


_POSSESSIVE = re.compile(r"(?<=\w)['’]s\b", re.IGNORECASE)


def prepare(text: str) -> str:
    """Index- and query-side text normalisation done before the tantivy analyzer: the English
    possessive `'s` is dropped, as OpenSearch's `possessive_english` stemmer does."""
    if "'" not in text and "’" not in text:  # the regex's lookbehind scans every character
        return text
    return _POSSESSIVE.sub("", text)


@dataclass(frozen=True)
class Term:
    position: int
    text: str


def analyse(
    text: str, analyzer: tantivy.TextAnalyzer = ENGLISH, possessive: bool = True
) -> list[Term]:
    """Terms with their positions as the index sees them: a word the analyzer removes still
    takes a position, so phrases over it match as they were indexed."""
    terms: list[Term] = []
    for position, word in enumerate(WORDS.analyze(prepare(text) if possessive else text)):
        for token in analyzer.analyze(word):
            terms.append(Term(position, token))
    return terms


class TextQueries:
    """Builds tantivy queries for user text over an index's boosted text fields."""

    def __init__(self, schema: tantivy.Schema, fields: Mapping[str, float]):
        self.schema = schema
        self.fields = dict(fields)

    def _phrase(self, field: str, terms: list[Term], slop: int) -> tantivy.Query:
        if len({t.position for t in terms}) == 1:
            return tantivy.Query.term_query(self.schema, field, terms[0].text)
        first = terms[0].position
        words = [(t.position - first, t.text) for t in terms]
        return tantivy.Query.phrase_query(self.schema, field, words, slop)

    def _any(
        self,
        field: str,
        terms: list[Term],
        unknown: Callable[[str, str], bool] | None,
        boost: float = 1.0,
    ) -> list[tantivy.Query]:
        """One (boosted) clause per distinct term of the field, plus near spellings."""
        clauses = []
        for t in dict.fromkeys(t.text for t in terms):
            clauses.append(tantivy.Query.term_query(self.schema, field, t))
            # A word the field does not know (a misspelling): its near spellings, scored low
            # and flat (tantivy scores fuzzy matches as a constant).
            if unknown is not None and fuzzy_distance(t) and unknown(field, t):
                near = tantivy.Query.fuzzy_term_query(
                    self.schema, field, t, distance=fuzzy_distance(t), transposition_cost_one=True
                )
                clauses.append(tantivy.Query.boost_query(near, FUZZY_BOOST))
        return [tantivy.Query.boost_query(c, boost) if boost != 1.0 else c for c in clauses]

    def text(
        self,
        text: str,
        mode: str,
        slop: int,
        unknown: Callable[[str, str], bool] | None = None,
    ) -> tantivy.Query:
        """`text` in `mode` (phrase / best_fields / most_fields); a fully quoted text is an exact
        phrase in every mode, as MIT Learn's query_string branch. Text that analyses to no term
        (only stop words or punctuation) matches nothing, as OpenSearch's zero_terms_query.
        `unknown(field, term)`: fuzzy matching (best/most_fields) for the terms it names."""
        text = engine_text(text)
        quoted = is_quoted(text)
        terms = analyse(text[1:-1] if quoted else text)
        if not terms:
            return tantivy.Query.empty_query()
        should = tantivy.Occur.Should
        if mode == "most_fields" and not quoted:
            # The sum over fields as one flat disjunction of boosted terms: the same scores as
            # per-field sums, and tantivy's block-max pruning applies (2x faster at 100k).
            return tantivy.Query.boolean_query(
                [
                    (should, c)
                    for field, boost in self.fields.items()
                    for c in self._any(field, terms, unknown, float(boost))
                ]
            )
        per_field = []
        for field, boost in self.fields.items():
            if quoted or mode == "phrase":
                q = self._phrase(field, terms, 0 if quoted else max(0, int(slop)))
            else:
                q = tantivy.Query.boolean_query(
                    [(should, c) for c in self._any(field, terms, unknown)]
                )
            per_field.append(tantivy.Query.boost_query(q, float(boost)))
        return tantivy.Query.disjunction_max_query(per_field)

    def title_prefix(self, field: str, prefix: str) -> tantivy.Query:
        """Typeahead: titles with the prefix's words in order, the last one as a prefix."""
        terms = analyse(engine_text(prefix), DEFAULT)
        if not terms:
            return tantivy.Query.empty_query()
        first = terms[0].position
        words = [(t.position - first, t.text) for t in terms]
        return tantivy.Query.phrase_prefix_query(self.schema, field, words)
