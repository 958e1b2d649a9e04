-- What an APPEND costs PostgreSQL, cut down: the searchable text indexed
-- only where SEARCH uses it, the blob row written once, generic plans.
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
-- change, and backends of the previous release keep working. The blob row
-- and the generic plans are explained where they are done, below.

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

-- An APPEND that arrived whole writes its blob row once. 010 inserted it and
-- then updated it twice (the parse, the POP3 size): two more versions of a
-- row that carries the ~1-2 KB parse, each written to the WAL whole. The
-- parse and size now go in with the insert; a body the account already has
-- keeps its own (the same bytes parse the same) and only fills what it
-- lacks, as the updates did.
CREATE FUNCTION petrel__blob_from_data_parsed(p_account bigint, p_data bytea, p_tree bytea,
                                              p_envelope bytea, p_bodystructure bytea,
                                              p_body bytea, p_crlf_size int8) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    c_chunk CONSTANT int8 := 262144;
    v_size int8 := octet_length(p_data);
    v_blob bigint;
    v_refs int;
BEGIN
    -- DO UPDATE (not DO NOTHING) locks an existing blob so a concurrent
    -- expunge cannot free it before our message points at it (as 010).
    INSERT INTO blobs AS b (account_id, sha256, size, refs, mime_tree, envelope, bodystructure,
                            body, crlf_size)
    VALUES (p_account, sha256(p_data), v_size, 1, p_tree, p_envelope, p_bodystructure, p_body,
            p_crlf_size)
    ON CONFLICT (account_id, sha256) DO UPDATE
       SET refs = b.refs + 1,
           mime_tree = coalesce(b.mime_tree, excluded.mime_tree),
           envelope = CASE WHEN b.mime_tree IS NULL THEN excluded.envelope ELSE b.envelope END,
           bodystructure = CASE WHEN b.mime_tree IS NULL THEN excluded.bodystructure
                                ELSE b.bodystructure END,
           body = CASE WHEN b.mime_tree IS NULL THEN excluded.body ELSE b.body END,
           crlf_size = coalesce(b.crlf_size, excluded.crlf_size)
    RETURNING b.id, b.refs INTO v_blob, v_refs;
    IF v_refs = 1 THEN
        INSERT INTO blob_chunks (account_id, blob_id, seq, data)
        SELECT p_account, v_blob, g::int4, substr(p_data, (g * c_chunk + 1)::int, c_chunk::int)
          FROM generate_series(0::int8, (v_size + c_chunk - 1) / c_chunk - 1) g;
    END IF;
    RETURN v_blob;
END $$;

-- 010's petrel_append_message, same signature and results, with the blob
-- row written once on the whole-body path.
CREATE OR REPLACE FUNCTION petrel_append_message(p_account bigint, p_mailbox_name text,
                                                 p_flags int4, p_keywords text[],
                                                 p_internaldate int8, p_tz int4,
                                                 p_header_size int8,
                                                 p_data bytea, p_blob bigint, p_size int8,
                                                 p_sha256 bytea, p_tree bytea, p_envelope bytea,
                                                 p_bodystructure bytea, p_body bytea,
                                                 p_headers text, p_text text, p_sentdate date,
                                                 p_crlf_size int8, p_msgid text, p_refs text[])
RETURNS TABLE(uidvalidity int8, uid int8, mailbox_id int8, modseq int8)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_name text := petrel__norm_name(p_mailbox_name);
    v_kw text[] := petrel__check_kw(p_keywords);
    v_size int8 := CASE WHEN p_data IS NOT NULL THEN octet_length(p_data) ELSE p_size END;
    v_blob bigint;
    v_thread uuid;
BEGIN
    PERFORM petrel__append_check(p_account, v_name, p_flags, p_header_size, v_size);
    -- Before the body and the mailbox row lock: see 010's "Concurrency".
    v_thread := petrel__thread_for(p_account, p_msgid, p_refs);
    IF p_data IS NOT NULL THEN
        v_blob := petrel__blob_from_data_parsed(p_account, p_data, p_tree, p_envelope,
                                                p_bodystructure, p_body, p_crlf_size);
    ELSE
        v_blob := petrel__blob_from_staged(p_account, p_blob, p_size, p_sha256);
        PERFORM petrel_blob_set_mime(p_account, v_blob, p_tree, p_envelope, p_bodystructure,
                                     p_body);
        UPDATE blobs b SET crlf_size = p_crlf_size
         WHERE b.account_id = p_account AND b.id = v_blob
           AND b.crlf_size IS NULL AND p_crlf_size IS NOT NULL;
    END IF;
    PERFORM petrel__blob_set_text(p_account, v_blob, p_headers, p_text, p_sentdate);
    RETURN QUERY SELECT * FROM petrel__add_threaded(p_account, v_name, p_flags, v_kw,
                                                    p_internaldate, p_tz, p_header_size,
                                                    v_blob, v_size, v_thread);
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
