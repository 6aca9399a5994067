-- Which encoder embedded each resource: a change of encoder re-embeds every resource into the
-- new encoder's collection. Rows written before this column existed were embedded by the
-- hashing encoder, the only local one then.
ALTER TABLE embedding_state ADD COLUMN encoder text NOT NULL DEFAULT 'hashidf768';
