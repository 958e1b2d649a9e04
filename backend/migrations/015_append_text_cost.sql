-- What an APPEND costs PostgreSQL, cut down: the searchable text indexed
-- only where SEARCH uses it, bodies compressed with LZ4, generic plans
-- (018 then rewrites petrel_append_message itself).
--
-- Measured on the bench's imap-append (16 clients, ~30 KB messages with
-- realistic headers of ~950 bytes: Received, DKIM-Signature, ...), per
-- APPEND in PostgreSQL (pg_stat_statements, mean execution time):
--
--  * The trigram index on blob_text.headers (006) cost ~1.1 ms of the
--    ~1.4 ms the blob_text insert took: every distinct trigram of the whole
--    header, most of them from Received and DKIM lines nobody searches for,
--    is a GIN entry. SEARCH only ever asked that index to narrow FROM, TO,
--    CC, BCC and SUBJECT (op_search.c); those have columns of their own
--    (about 90 bytes together), so the index now covers just them, in one
--    expression (blob_text_fields_trgm) that op_search.c repeats exactly.
--    The insert with it: 0.30 ms. HEADER <other field> and TEXT read the
--    mailbox's rows as BODY always did; a deployment that searches those
--    often can put back
--      CREATE INDEX CONCURRENTLY blob_text_headers_trgm ON blob_text USING gin (headers gin_trgm_ops);
--    and the HEADER query (headers ~ pattern) uses it again.
--  * petrel__header_field (006) is a LANGUAGE sql function with a FROM, so
--    it cannot be inlined, and PL/pgSQL calls of it are parsed and planned
--    again each time: five per APPEND, one regular expression pass each.
--    One pass now finds all five fields, in a PL/pgSQL statement whose plan
--    is kept for the session: the insert went from 0.30 to 0.12 ms.
--  * petrel_blob_set_mime (005) likewise was an SQL function replanned per
--    call (0.15 ms); as PL/pgSQL its plan is kept (0.03 ms).
--
-- Same signatures and results as before, so every caller (APPEND, staged
-- APPEND, LMTP delivery, the lazy parse for old messages) gains without a
-- change, and backends of the previous release keep working. LZ4 and the
-- generic plans are explained where they are done, below.

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN
        DROP INDEX IF EXISTS blob_text_headers_trgm;
        CREATE INDEX blob_text_fields_trgm ON blob_text USING gin
            ((h_from || E'\n' || h_to || E'\n' || h_cc || E'\n' || h_bcc || E'\n' || h_subject)
             gin_trgm_ops);
    END IF;
END $$;

-- The values of From, To, Cc, Bcc and Subject found in one pass: several
-- fields of one name joined by newlines in header order, '' when absent
-- (exactly what petrel__header_field gave for each).
CREATE OR REPLACE FUNCTION petrel__blob_set_text(p_account bigint, p_blob bigint, p_headers text,
                                                 p_body text, p_sentdate date)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    h text := coalesce(p_headers, '');
BEGIN
    INSERT INTO blob_text (account_id, blob_id, sentdate, headers, body,
                           h_from, h_to, h_cc, h_bcc, h_subject)
    SELECT p_account, p_blob, p_sentdate, h, coalesce(p_body, ''),
           coalesce(string_agg(f.v[2], E'\n' ORDER BY f.n) FILTER (WHERE f.v[1] = 'from'), ''),
           coalesce(string_agg(f.v[2], E'\n' ORDER BY f.n) FILTER (WHERE f.v[1] = 'to'), ''),
           coalesce(string_agg(f.v[2], E'\n' ORDER BY f.n) FILTER (WHERE f.v[1] = 'cc'), ''),
           coalesce(string_agg(f.v[2], E'\n' ORDER BY f.n) FILTER (WHERE f.v[1] = 'bcc'), ''),
           coalesce(string_agg(f.v[2], E'\n' ORDER BY f.n) FILTER (WHERE f.v[1] = 'subject'), '')
      FROM regexp_matches(h, '(?:^|\n)(from|to|cc|bcc|subject): ([^\n]*)', 'g')
           WITH ORDINALITY AS f(v, n)
    ON CONFLICT (account_id, blob_id) DO NOTHING;
EXCEPTION WHEN foreign_key_violation THEN
    NULL;
END $$;

CREATE OR REPLACE FUNCTION petrel_blob_set_mime(p_account bigint, p_blob bigint, p_tree bytea,
                                                p_envelope bytea, p_bodystructure bytea,
                                                p_body bytea)
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE blobs
       SET mime_tree = p_tree, envelope = p_envelope, bodystructure = p_bodystructure, body = p_body
     WHERE account_id = p_account AND id = p_blob AND mime_tree IS NULL;
END $$;

-- Message bodies and their text compressed with LZ4 rather than PostgreSQL's
-- default pglz. On the bench's messages (30 KB, text and base64) pglz spent
-- 0.53 ms per message trying and saved nothing (2,000 messages: 121 MB
-- either way), LZ4 0.06 ms for a slightly smaller result; on mail text the
-- two compress alike. New values only: what is stored stays readable as it
-- is (each value records its method). LZ4 needs a server built with it
-- (Debian's and the official images are); without it the default stays.
DO $$
BEGIN
    ALTER TABLE blob_chunks ALTER COLUMN data SET COMPRESSION lz4;
    ALTER TABLE blob_text ALTER COLUMN body SET COMPRESSION lz4,
                          ALTER COLUMN headers SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
    RAISE NOTICE 'LZ4 unavailable (%): bodies stay compressed with pglz', SQLERRM;
END $$;

-- Generic plans for the write paths. PL/pgSQL keeps each statement's plan,
-- but under plan_cache_mode = auto a statement with parameters is planned
-- anew on every call while its custom plans look cheaper than the generic
-- one, which for these single-row, primary-key statements they always do by
-- a hair: planning was ~12% of PostgreSQL's CPU in imap-append (perf:
-- GetCachedPlan -> pg_plan_query). Their generic plans are the same index
-- lookups. The setting holds for everything these functions call, and is
-- set only here, not for the session: SEARCH and FETCH statements depend
-- on their parameters' values.
DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN SELECT p.oid::regprocedure FROM pg_proc p
              WHERE p.pronamespace = current_schema()::regnamespace
                AND p.proname IN ('petrel_append_message', 'petrel_append_stage',
                                  'petrel_append_staged', 'petrel_deliver_mime',
                                  'petrel_deliver_data_mime')
    LOOP
        EXECUTE format('ALTER FUNCTION %s SET plan_cache_mode = force_generic_plan', f);
    END LOOP;
END $$;
