-- ProgramCertificate (MIT Learn profiles.ProgramCertificate, managed=False): written only by the
-- external reverse-ETL sync, read by the app. Columns and types follow MIT Learn's model.
--
-- Roles are NOLOGIN groups, created idempotently (roles are cluster-wide, so a second database or
-- a re-run must not fail). Creating a role needs CREATEROLE, which a managed database's owner
-- usually lacks: then this migration creates no role (a NOTICE says so) and grants nothing to the
-- missing ones; `learn db provision-roles` (an admin with CREATEROLE) creates them, and every
-- `learn migrate` re-applies the grants (learnflow/db/roles.py). Operators grant the roles to real
-- login users:
--     GRANT learnflow_reverse_etl TO hightouch_sync;   GRANT learnflow_app TO learnflow_web;
-- The app reads with `SET LOCAL ROLE learnflow_app` (webhook_service/certificates.py).

DO $$
DECLARE
    may_create boolean := (
        SELECT rolcreaterole OR rolsuper FROM pg_roles WHERE rolname = current_user
    );
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['learnflow_reverse_etl', 'learnflow_app'] LOOP
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = r) THEN
            IF may_create THEN
                EXECUTE format('CREATE ROLE %I NOLOGIN', r);
            ELSE
                RAISE NOTICE 'role % not created: % has no CREATEROLE; run `learn db provision-roles` as an admin, then `learn migrate`', r, current_user;
            END IF;
        END IF;
    END LOOP;
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
-- Grants only to the roles that exist (see above).
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'learnflow_reverse_etl') THEN
        GRANT USAGE ON SCHEMA external TO learnflow_reverse_etl;
        -- SELECT too: upserts (ON CONFLICT DO UPDATE) and DELETE ... WHERE read the rows they change.
        GRANT SELECT, INSERT, UPDATE, DELETE ON external.programcertificate TO learnflow_reverse_etl;
    END IF;
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'learnflow_app') THEN
        GRANT USAGE ON SCHEMA external TO learnflow_app;
        GRANT SELECT ON external.programcertificate TO learnflow_app;
    END IF;
END
$$;
