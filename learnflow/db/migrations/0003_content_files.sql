-- Content files from course archives (OLX, Canvas, OCW): what the loader, the purge and text
-- search need beyond 0001's table.

-- The loader reads and retires a run's files; the daily purge finds old unpublished ones.
CREATE INDEX content_file_run_published ON content_file (run_id, published);
CREATE INDEX content_file_unpublished_on ON content_file (unpublished_on) WHERE NOT published;

-- Postgres full-text search over a file's title and text. The text is cut at 100k characters:
-- a tsvector must stay under 1 MB, and an oversized one would fail the insert, not the search.
CREATE INDEX content_file_text ON content_file USING gin (
    to_tsvector('english', coalesce(title, '') || ' ' || left(content, 100000))
);

-- Files of a run's newest archive that gave no text, with their md5: the next run does not send
-- them to the extractor again while their bytes are unchanged (MIT Learn re-extracts them).
CREATE TABLE content_file_textless (
    run_id bigint NOT NULL REFERENCES learning_resource_run (id) ON DELETE CASCADE,
    key text NOT NULL,
    archive_checksum text NOT NULL,
    PRIMARY KEY (run_id, key)
);

-- When the run's archive (checksum, archive_key) was last recorded.
ALTER TABLE learning_resource_run ADD COLUMN archive_recorded_on timestamptz;
