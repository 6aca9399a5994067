-- Webhook events already started (webhook_service/dedupe.py): one row per event key (a
-- Standard Webhooks id, or a hash of an MIT Learn-signed body). A delivery claims the key with one
-- INSERT … ON CONFLICT before starting its workflow, so concurrent duplicates and replays within
-- the window start nothing. Rows past expires_at are taken over by the next claim or deleted.
CREATE TABLE webhook_delivery (
    event_key text PRIMARY KEY,
    body_digest text NOT NULL,
    workflow_id text NOT NULL,
    started boolean NOT NULL DEFAULT false,
    expires_at timestamptz NOT NULL
);
CREATE INDEX webhook_delivery_expires ON webhook_delivery (expires_at);
