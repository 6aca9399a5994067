-- The catalog's jsonb documents (2-3 kB a resource) are compressed when stored (TOAST). pglz,
-- the default, was a third of Postgres's CPU in a 10k catalog load (bench.ingest under `perf`:
-- pglz_compress 6.4% of the machine's samples, Postgres 18%); lz4 compresses several times
-- faster. Only new values take it (old ones stay pglz and readable); the values are unchanged,
-- and so are content hashes. A server built without lz4 (the pgserver wheel) keeps pglz.
DO $$
BEGIN
    ALTER TABLE learning_resource ALTER COLUMN data SET COMPRESSION lz4;
    ALTER TABLE learning_resource_run ALTER COLUMN data SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
    RAISE NOTICE 'lz4 not supported by this server: the catalog stays pglz-compressed';
END
$$;
