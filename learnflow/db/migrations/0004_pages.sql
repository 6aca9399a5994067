-- Marketing pages attach to the published course/program whose url equals the page's URL; the
-- fetch lists those URLs. Without this each page's load scans learning_resource.
CREATE INDEX learning_resource_published_url ON learning_resource (url) WHERE published;

-- Raw pages already loaded, by content: a re-run whose page hashes to a row here, and whose
-- resources still carry the hashes recorded, skips the page's transform and upsert and only marks
-- its resources as seen for the prune. `page_hash` covers the raw bytes, the context pages the
-- transform read, the transform code and reference data, and (for transforms that read the
-- clock) the UTC day. Only pages that gave resources and nothing else are recorded.
CREATE TABLE etl_page_state (
    source text NOT NULL,
    page_hash text NOT NULL,
    resource_ids bigint[] NOT NULL,
    resource_hashes text[] NOT NULL,
    last_run_id text NOT NULL,
    recorded_on timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, page_hash)
);
