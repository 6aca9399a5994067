-- The catalog: MIT Learn's learning resources, runs, relationships, content files, feed items.
-- Scalar columns that are filtered or joined on are real columns; the rest of the resource model
-- is kept as JSONB (`data`) so a field added to the model needs no migration.

CREATE TABLE platform (
    code text PRIMARY KEY,
    name text NOT NULL,
    url text,
    is_edx boolean NOT NULL DEFAULT false,
    has_content_files boolean NOT NULL DEFAULT false
);

CREATE TABLE offeror (
    code text PRIMARY KEY,
    name text NOT NULL UNIQUE,
    professional boolean NOT NULL DEFAULT false
);

CREATE TABLE department (
    department_id text PRIMARY KEY,
    name text NOT NULL
);

CREATE TABLE topic (
    name text PRIMARY KEY,
    parent text REFERENCES topic (name) DEFERRABLE INITIALLY DEFERRED,
    topic_uuid text
);

-- Per-offeror crosswalk: a source's topic name -> our topic.
CREATE TABLE topic_mapping (
    offeror text NOT NULL,
    source_name text NOT NULL,
    topic text NOT NULL REFERENCES topic (name),
    PRIMARY KEY (offeror, source_name)
);

CREATE TABLE learning_resource (
    id bigserial PRIMARY KEY,
    platform text NOT NULL,
    readable_id text NOT NULL,
    resource_type text NOT NULL,
    etl_source text NOT NULL,
    offered_by text,
    title text NOT NULL,
    url text,
    published boolean NOT NULL DEFAULT true,
    test_mode boolean NOT NULL DEFAULT false,
    last_modified timestamptz,
    data jsonb NOT NULL,
    -- sha256 of the transformed model: an upsert with the same hash rewrites nothing
    content_hash text NOT NULL,
    view_count bigint,
    created_on timestamptz NOT NULL DEFAULT now(),
    updated_on timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT learning_resource_natural_key UNIQUE (platform, readable_id, resource_type)
);
CREATE INDEX learning_resource_source_published ON learning_resource (etl_source, published);
CREATE INDEX learning_resource_updated_on ON learning_resource (updated_on);

CREATE TABLE learning_resource_run (
    id bigserial PRIMARY KEY,
    resource_id bigint NOT NULL REFERENCES learning_resource (id) ON DELETE CASCADE,
    run_id text NOT NULL,
    published boolean NOT NULL DEFAULT true,
    start_date timestamptz,
    end_date timestamptz,
    data jsonb NOT NULL,
    -- archive change detection (content files): tar-header checksum and the last archive key
    checksum text,
    archive_key text,
    created_on timestamptz NOT NULL DEFAULT now(),
    updated_on timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT learning_resource_run_key UNIQUE (resource_id, run_id)
);

CREATE TABLE learning_resource_relationship (
    parent_id bigint NOT NULL REFERENCES learning_resource (id) ON DELETE CASCADE,
    child_id bigint NOT NULL REFERENCES learning_resource (id) ON DELETE CASCADE,
    relation_type text NOT NULL,
    position integer NOT NULL DEFAULT 0,
    PRIMARY KEY (parent_id, child_id, relation_type)
);

CREATE TABLE content_file (
    id bigserial PRIMARY KEY,
    run_id bigint REFERENCES learning_resource_run (id) ON DELETE CASCADE,
    resource_id bigint NOT NULL REFERENCES learning_resource (id) ON DELETE CASCADE,
    key text NOT NULL,
    title text,
    url text,
    file_type text,
    content_type text,
    file_extension text,
    content text NOT NULL DEFAULT '',
    checksum text,
    archive_checksum text,
    published boolean NOT NULL DEFAULT true,
    data jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_on timestamptz NOT NULL DEFAULT now(),
    updated_on timestamptz NOT NULL DEFAULT now(),
    unpublished_on timestamptz
);
CREATE UNIQUE INDEX content_file_run_key ON content_file (coalesce(run_id, 0), resource_id, key);

CREATE TABLE feed_source (
    id bigserial PRIMARY KEY,
    feed_type text NOT NULL,
    url text NOT NULL,
    title text NOT NULL,
    data jsonb NOT NULL DEFAULT '{}'::jsonb,
    CONSTRAINT feed_source_key UNIQUE (feed_type, url)
);

CREATE TABLE feed_item (
    id bigserial PRIMARY KEY,
    guid text NOT NULL UNIQUE,
    source_id bigint NOT NULL REFERENCES feed_source (id) ON DELETE CASCADE,
    etl_source text NOT NULL,
    feed_type text NOT NULL,
    title text NOT NULL,
    url text,
    data jsonb NOT NULL,
    content_hash text NOT NULL,
    created_on timestamptz NOT NULL DEFAULT now(),
    updated_on timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX feed_item_source ON feed_item (etl_source);

CREATE TABLE view_event (
    event_uuid text PRIMARY KEY,
    resource_id bigint NOT NULL REFERENCES learning_resource (id) ON DELETE CASCADE,
    event_date timestamptz NOT NULL
);

-- Items a transform could not read, with the reason: nothing is lost.
CREATE TABLE quarantine (
    id bigserial PRIMARY KEY,
    source text NOT NULL,
    run_id text NOT NULL,
    item_key text,
    reason text NOT NULL,
    raw text NOT NULL,
    created_on timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX quarantine_source ON quarantine (source, created_on DESC);

-- One row per ingestion run: what the prune guard compares against and `learn status` shows.
CREATE TABLE etl_run (
    run_id text PRIMARY KEY,
    source text NOT NULL,
    started_on timestamptz NOT NULL DEFAULT now(),
    finished_on timestamptz,
    outcome text,
    counts jsonb NOT NULL DEFAULT '{}'::jsonb
);

-- Natural keys seen by a run (resources and feed items); emptied when the run is pruned.
CREATE UNLOGGED TABLE etl_seen (
    run_id text NOT NULL,
    kind text NOT NULL,  -- resource | feed_item
    item_id bigint NOT NULL,
    PRIMARY KEY (run_id, kind, item_id)
);

-- What the keyword index and the vector store hold, so each pass only touches what changed.
CREATE TABLE search_index_state (
    resource_id bigint PRIMARY KEY REFERENCES learning_resource (id) ON DELETE CASCADE,
    indexed_hash text NOT NULL,
    indexed_on timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE embedding_state (
    resource_id bigint PRIMARY KEY REFERENCES learning_resource (id) ON DELETE CASCADE,
    text_checksum text NOT NULL,
    embedded_on timestamptz NOT NULL DEFAULT now()
);
