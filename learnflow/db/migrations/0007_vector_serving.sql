-- Which encoder's vector collections the search service reads. A change of QDRANT_ENCODER fills
-- the new encoder's collections in the background; the embeddings workflow promotes it here once
-- they hold every published resource and content file, and retires the old ones after a grace.
-- One row. `kind`/`model` say how to load the encoder (NULL: derived from `encoder`).
CREATE TABLE vector_serving (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    encoder text NOT NULL,
    kind text,
    model text,
    retiring text,  -- the previous encoder, until its collections are dropped
    promoted_on timestamptz NOT NULL DEFAULT now()
);

-- A deployment from before this table serves what embedded its resources: the encoder most of
-- them were embedded by (the one it was configured with), so switching the encoder afterwards
-- keeps answering from the old collections until the new ones are complete.
INSERT INTO vector_serving (encoder)
SELECT encoder FROM embedding_state GROUP BY encoder ORDER BY count(*) DESC, encoder LIMIT 1;
