"""A judged set for search relevance (`python -m bench.relevance --json`).

- `queries.jsonl`: learner queries (`id`, `kind`, `text`): natural-language questions, short
  topics, stems and misspellings, names, apostrophes, a course number.
- `judgements.jsonl`: one grade per (query, `platform`, `readable_id`), with the title for the
  reader. 2: squarely what the query asks (a course, program or video on the topic; taught or
  led by the person named). 1: partly (a neighbouring topic, one lecture of a relevant course,
  the person as one of several instructors). 0: not relevant.
- Pooling: every document any mode ranks in its top 10 on either keyword backend is judged
  (`--pool-out` lists the ones still unjudged); documents known relevant from reading the whole
  corpus are judged too, so Recall@20 has the full relevant set. The report gives each mode's
  judged share of its top 10: below 1.0 means new documents to judge, not zeros to trust.
- The corpus is built at run time from ../shared/fixtures (corpus.py); nothing is copied here.
"""
