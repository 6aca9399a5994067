-- ProgramCertificate (MIT Learn profiles.ProgramCertificate, managed=False): written only by the
-- external reverse-ETL sync, read by the app. Columns and types follow MIT Learn's model.
--
-- Roles are NOLOGIN groups, created idempotently (roles are cluster-wide, so a second database or
-- a re-run must not fail). Operators grant them to real login users:
--     GRANT learnflow_reverse_etl TO hightouch_sync;   GRANT learnflow_app TO learnflow_web;
-- The app reads with `SET LOCAL ROLE learnflow_app` (webhook_service/certificates.py).

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'learnflow_reverse_etl') THEN
        CREATE ROLE learnflow_reverse_etl NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'learnflow_app') THEN
        CREATE ROLE learnflow_app NOLOGIN;
    END IF;
END
$$;

CREATE SCHEMA IF NOT EXISTS external;

CREATE TABLE IF NOT EXISTS external.programcertificate (
    -- the reverse-ETL's sync hash of the record
    record_hash text PRIMARY KEY CHECK (record_hash <> ''),
    program_title varchar(256) NOT NULL,
    user_full_name varchar(256) NOT NULL DEFAULT '',
    user_email varchar(256) NOT NULL,
    user_edxorg_id integer,
    micromasters_program_id integer,
    mitxonline_program_id integer,
    user_edxorg_username varchar(256),
    user_mitxonline_username varchar(256),
    user_first_name varchar(256),
    user_last_name varchar(256),
    user_gender varchar(256),
    user_year_of_birth varchar(256),
    user_country varchar(256),
    user_address_city varchar(256),
    user_address_postal_code varchar(256),
    user_street_address varchar(256),
    user_address_state_or_territory varchar(256),
    program_completion_timestamp timestamptz
);

CREATE INDEX IF NOT EXISTS programcertificate_user_email_idx
    ON external.programcertificate (lower(user_email));

REVOKE ALL ON SCHEMA external FROM PUBLIC;
REVOKE ALL ON external.programcertificate FROM PUBLIC;
GRANT USAGE ON SCHEMA external TO learnflow_reverse_etl, learnflow_app;
-- SELECT too: upserts (ON CONFLICT DO UPDATE) and DELETE ... WHERE read the rows they change.
GRANT SELECT, INSERT, UPDATE, DELETE ON external.programcertificate TO learnflow_reverse_etl;
GRANT SELECT ON external.programcertificate TO learnflow_app;
