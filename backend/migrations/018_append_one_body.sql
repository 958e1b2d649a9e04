-- APPEND in one PL/pgSQL body: the statements 015's petrel_append_message
-- reached through five nested functions (petrel__append_check and its
-- petrel__check_flags, petrel__blob_from_data_parsed, petrel__blob_set_text,
-- petrel__add_threaded) are written out here, and two of them go:
--  * the mailbox existence check before any work: the UPDATE of the
--    mailbox row finds a missing mailbox anyway, and an error there rolls
--    back what came before it in the same statement;
--  * the EXCEPTION block of petrel__blob_set_text, which opened a
--    subtransaction for every APPEND to forgive a foreign-key violation that
--    cannot happen here: the blob row was inserted, or locked by ON CONFLICT
--    DO UPDATE, by this same transaction.
-- pgbench against this function alone (8 clients, a 27 KB message with its
-- parse, each call a transaction, load 3.5-4.6): 818-980 -> 1,048-1,150
-- calls/s. Same signature, rows and errors (P0002 for a missing mailbox,
-- 54000 for one out of UIDs, 22023 for bad flags or sizes); the order of
-- threading ids before the mailbox row lock (010's "Concurrency") stays.
-- The staged path (p_data NULL) keeps 015's steps.
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
-- 015 says why; CREATE OR REPLACE would otherwise drop the setting.
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
#variable_conflict use_variable
DECLARE
    c_chunk CONSTANT int8 := 262144;
    v_name text := petrel__norm_name(p_mailbox_name);
    v_kw text[] := petrel__check_kw(p_keywords);
    v_size int8 := CASE WHEN p_data IS NOT NULL THEN octet_length(p_data) ELSE p_size END;
    v_h text := coalesce(p_headers, '');
    v_blob bigint;
    v_refs int;
    v_thread uuid;
    v_mailbox bigint;
    v_uidvalidity bigint;
    v_uid bigint;
    v_modseq bigint;
BEGIN
    IF p_flags IS NULL OR p_flags < 0 OR p_flags > 31 THEN
        RAISE EXCEPTION 'invalid flag bits %', p_flags USING ERRCODE = '22023';
    END IF;
    IF p_header_size IS NULL OR p_header_size < 0 OR p_header_size > v_size THEN
        RAISE EXCEPTION 'header size % does not fit message size %', p_header_size, v_size
            USING ERRCODE = '22023';
    END IF;
    -- Before the body and the mailbox row lock: see 010's "Concurrency".
    v_thread := petrel__thread_for(p_account, p_msgid, p_refs);
    IF p_data IS NOT NULL THEN
        -- The blob row written once, with its parse (015).
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
    ELSE
        v_blob := petrel__blob_from_staged(p_account, p_blob, p_size, p_sha256);
        PERFORM petrel_blob_set_mime(p_account, v_blob, p_tree, p_envelope, p_bodystructure,
                                     p_body);
        UPDATE blobs b SET crlf_size = p_crlf_size
         WHERE b.account_id = p_account AND b.id = v_blob
           AND b.crlf_size IS NULL AND p_crlf_size IS NOT NULL;
    END IF;
    -- 015's petrel__blob_set_text, without its EXCEPTION block (see above).
    INSERT INTO blob_text AS t (account_id, blob_id, sentdate, headers, body,
                           h_from, h_to, h_cc, h_bcc, h_subject)
    SELECT p_account, v_blob, p_sentdate, v_h, coalesce(p_text, ''),
           coalesce(string_agg(f.v[2], E'\n' ORDER BY f.n) FILTER (WHERE f.v[1] = 'from'), ''),
           coalesce(string_agg(f.v[2], E'\n' ORDER BY f.n) FILTER (WHERE f.v[1] = 'to'), ''),
           coalesce(string_agg(f.v[2], E'\n' ORDER BY f.n) FILTER (WHERE f.v[1] = 'cc'), ''),
           coalesce(string_agg(f.v[2], E'\n' ORDER BY f.n) FILTER (WHERE f.v[1] = 'bcc'), ''),
           coalesce(string_agg(f.v[2], E'\n' ORDER BY f.n) FILTER (WHERE f.v[1] = 'subject'), '')
      FROM regexp_matches(v_h, '(?:^|\n)(from|to|cc|bcc|subject): ([^\n]*)', 'g')
           WITH ORDINALITY AS f(v, n)
    ON CONFLICT (account_id, blob_id) DO NOTHING;
    UPDATE mailboxes b
       SET uidnext = b.uidnext + 1, highestmodseq = b.highestmodseq + 1
     WHERE b.account_id = p_account AND b.name = v_name AND b.uidnext <= 4294967295
    RETURNING b.id, b.uidvalidity, b.uidnext - 1, b.highestmodseq
         INTO v_mailbox, v_uidvalidity, v_uid, v_modseq;
    IF NOT FOUND THEN
        IF EXISTS (SELECT 1 FROM mailboxes b WHERE b.account_id = p_account AND b.name = v_name) THEN
            RAISE EXCEPTION 'mailbox "%" has used up its UIDs', v_name USING ERRCODE = '54000';
        END IF;
        RAISE EXCEPTION 'no such mailbox "%"', v_name USING ERRCODE = 'P0002';
    END IF;
    INSERT INTO messages (account_id, mailbox_id, uid, modseq, flags, keywords, internaldate,
                          tz_offset, size, header_size, blob_id, threadid)
    VALUES (p_account, v_mailbox, v_uid, v_modseq, p_flags, v_kw,
            CASE WHEN coalesce(p_internaldate, 0) = 0 THEN now()
                 ELSE to_timestamp(p_internaldate) END,
            coalesce(p_tz, 0), v_size, p_header_size, v_blob, v_thread);
    uidvalidity := v_uidvalidity; uid := v_uid; mailbox_id := v_mailbox; modseq := v_modseq;
    RETURN NEXT;
END $$;

-- 015's helper for the whole-body blob row is written out above (called as
-- a function it cost ~10%: pgbench as above, 1,118-1,181 against
-- 1,283-1,294 calls/s inline); nothing else calls it.
DROP FUNCTION petrel__blob_from_data_parsed(bigint, bytea, bytea, bytea, bytea, bytea, int8);
