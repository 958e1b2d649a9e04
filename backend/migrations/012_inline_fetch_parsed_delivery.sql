-- Speed-ups of FETCH and LMTP (issues #8 and #3), in two parts.
--
-- 1. FETCH BODY[] of a small message in one round trip: the metadata of a
-- few UIDs together with the bodies of their small messages, so the
-- frontend need not open a body stream (a second query) per message.
--
-- petrel_meta_inline(p_account bigint, p_mailbox bigint, p_lo int8, p_hi int8, p_max int8)
--   RETURNS TABLE(uid int8, flags int4, keywords text, internaldate int8,
--                 tz_offset int4, size int8, header_size int8, modseq int8,
--                 blob_id int8, inline_body bytea)
--   petrel_meta (without p_set_seen) for the single range [p_lo, p_hi], by
--   uid, plus inline_body: the whole body of each message of at most p_max
--   bytes and at most one 262144-byte chunk; NULL for larger ones. The
--   caller keeps the range short enough for the bodies to fit its frames.
--   keywords is text[]'s text form (the statement returns binary results,
--   and this keeps one array parser in the backend).
--   Unlike petrel_meta, a missing mailbox is not an error: there are just
--   no rows, and the caller asks petrel_meta when it gets none.
--
-- A LANGUAGE sql function with one SELECT is inlined into the calling
-- statement: this costs one executor run of two index scans, where
-- petrel_meta's PL/pgSQL loop plus petrel_read cost two calls and five
-- executor runs.

CREATE FUNCTION petrel_meta_inline(p_account bigint, p_mailbox bigint, p_lo int8, p_hi int8,
                                   p_max int8)
RETURNS TABLE(uid int8, flags int4, keywords text, internaldate int8, tz_offset int4,
              size int8, header_size int8, modseq int8, blob_id int8, inline_body bytea)
LANGUAGE sql STABLE AS $$
    SELECT m.uid, m.flags, m.keywords::text, extract(epoch FROM m.internaldate)::int8,
           m.tz_offset, m.size, m.header_size, m.modseq, m.blob_id,
           CASE WHEN m.size = 0 THEN ''::bytea
                WHEN m.size <= least(p_max, 262144) THEN
                    (SELECT c.data FROM blob_chunks c
                      WHERE c.account_id = p_account AND c.blob_id = m.blob_id AND c.seq = 0)
           END
      FROM messages m
     WHERE m.account_id = p_account AND m.mailbox_id = p_mailbox
       AND m.uid BETWEEN p_lo AND p_hi
     ORDER BY m.uid
$$;

-- 2. LMTP deliveries parsed on arrival, like APPEND: the MIME structure and
-- searchable text go in with the message, in the delivery's transaction,
-- so the 250 reply means stored and parsed and the first FETCH or SEARCH
-- does not parse (mime_ensure stays for rows stored before this).
--
-- petrel_deliver_mime(... petrel_deliver's 9 (010_objectid_savedate.sql) ..., p_tree bytea, p_envelope bytea,
--                     p_bodystructure bytea, p_body bytea, p_headers text,
--                     p_text text, p_sentdate date, p_from text, p_to text,
--                     p_cc text, p_bcc text, p_subject text)
-- petrel_deliver_data_mime(... petrel_deliver_data's 6 ..., the same 12)
--   petrel_deliver / petrel_deliver_data (003_lmtp.sql, 010) with the parse
--   stored on the body of every recipient the message reached, as
--   petrel_blob_set_mime (006_search.sql) does; a body the account had
--   already keeps its parse. p_from .. p_subject are blob_text's h_*
--   columns, which the caller extracts from p_headers (what
--   petrel__header_field computes, without running a SQL function five
--   times per message). Same rows as the functions they wrap.
--
-- The parse goes onto the staged body first, before petrel_deliver takes
-- the recipients' mailbox locks (held until COMMIT): the search-text insert
-- (a trigram GIN index) then never makes other deliveries to the same
-- mailbox wait (p99 of lmtp-deliver 600-700 -> 163 ms). Only the copies
-- petrel_deliver makes in other accounts get it afterwards; a body an
-- account had already keeps what it has (mime_ensure parses it if that is
-- nothing).

-- Stores a parse on one body unless it has one.
CREATE FUNCTION petrel__blob_store_parse(p_account bigint, p_blob bigint, p_tree bytea,
                                         p_envelope bytea, p_bodystructure bytea, p_body bytea,
                                         p_headers text, p_text text, p_sentdate date,
                                         p_from text, p_to text, p_cc text, p_bcc text,
                                         p_subject text)
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE blobs
       SET mime_tree = p_tree, envelope = p_envelope, bodystructure = p_bodystructure,
           body = p_body
     WHERE account_id = p_account AND id = p_blob AND mime_tree IS NULL;
    INSERT INTO blob_text (account_id, blob_id, sentdate, headers, body,
                           h_from, h_to, h_cc, h_bcc, h_subject)
    VALUES (p_account, p_blob, p_sentdate, coalesce(p_headers, ''), coalesce(p_text, ''),
            coalesce(p_from, ''), coalesce(p_to, ''), coalesce(p_cc, ''), coalesce(p_bcc, ''),
            coalesce(p_subject, ''))
    ON CONFLICT (account_id, blob_id) DO NOTHING;
END $$;

CREATE FUNCTION petrel_deliver_mime(p_src_account bigint, p_src_blob bigint, p_size int8,
                                    p_sha256 bytea, p_header_size int8,
                                    p_accounts int8[], p_mailboxes text[], p_msgid text,
                                    p_refs text[], p_tree bytea,
                                    p_envelope bytea, p_bodystructure bytea, p_body bytea,
                                    p_headers text, p_text text, p_sentdate date, p_from text,
                                    p_to text, p_cc text, p_bcc text, p_subject text)
RETURNS TABLE(idx int4, err_state text, err_text text, mailbox text, uidvalidity int8, uid int8)
LANGUAGE plpgsql AS $$
DECLARE
    r record;
    b record;
    v_idx int4[] := '{}';
    v_mbox text[] := '{}';
    v_uid int8[] := '{}';
BEGIN
    PERFORM petrel__blob_store_parse(p_src_account, p_src_blob, p_tree, p_envelope,
                                     p_bodystructure, p_body, p_headers, p_text, p_sentdate,
                                     p_from, p_to, p_cc, p_bcc, p_subject);
    FOR r IN SELECT * FROM petrel_deliver(p_src_account, p_src_blob, p_size, p_sha256,
                                          p_header_size, p_accounts, p_mailboxes, p_msgid,
                                          p_refs) LOOP
        idx := r.idx; err_state := r.err_state; err_text := r.err_text;
        mailbox := r.mailbox; uidvalidity := r.uidvalidity; uid := r.uid;
        RETURN NEXT;
        -- The staged body's own account holds it or had it already.
        IF r.err_state = '00000' AND p_accounts[r.idx] <> p_src_account THEN
            v_idx := v_idx || r.idx; v_mbox := v_mbox || r.mailbox; v_uid := v_uid || r.uid;
        END IF;
    END LOOP;
    IF cardinality(v_idx) = 0 THEN
        RETURN;
    END IF;
    -- Copies in other accounts: one body per account however many of its
    -- mailboxes got the message (they share it by SHA-256).
    FOR b IN
        SELECT DISTINCT p_accounts[d.i] AS acct, m.blob_id
          FROM unnest(v_idx, v_mbox, v_uid) AS d(i, name, uid)
          JOIN mailboxes x ON x.account_id = p_accounts[d.i] AND x.name = d.name
          JOIN messages m ON m.account_id = x.account_id AND m.mailbox_id = x.id AND m.uid = d.uid
    LOOP
        PERFORM petrel__blob_store_parse(b.acct, b.blob_id, p_tree, p_envelope, p_bodystructure,
                                         p_body, p_headers, p_text, p_sentdate, p_from, p_to,
                                         p_cc, p_bcc, p_subject);
    END LOOP;
END $$;

-- petrel_deliver_data's staging (003_lmtp.sql), then petrel_deliver_mime.
CREATE FUNCTION petrel_deliver_data_mime(p_accounts int8[], p_mailboxes text[],
                                         p_header_size int8, p_data bytea, p_msgid text,
                                         p_refs text[], p_tree bytea,
                                         p_envelope bytea, p_bodystructure bytea, p_body bytea,
                                         p_headers text, p_text text, p_sentdate date,
                                         p_from text, p_to text, p_cc text, p_bcc text,
                                         p_subject text)
RETURNS TABLE(idx int4, err_state text, err_text text, mailbox text, uidvalidity int8, uid int8)
LANGUAGE plpgsql AS $$
DECLARE
    c_chunk CONSTANT int8 := 262144;
    v_size int8 := octet_length(p_data);
    v_account bigint;
    v_blob bigint;
BEGIN
    IF p_data IS NULL THEN
        RAISE EXCEPTION 'no message data' USING ERRCODE = '22023';
    END IF;
    SELECT b.account_id, b.blob_id INTO v_account, v_blob FROM petrel_deliver_begin(p_accounts) b;
    IF v_account IS NULL THEN
        RETURN;
    END IF;
    INSERT INTO blob_chunks (account_id, blob_id, seq, data)
    SELECT v_account, v_blob, g::int4, substr(p_data, (g * c_chunk + 1)::int, c_chunk::int)
      FROM generate_series(0::int8, (v_size + c_chunk - 1) / c_chunk - 1) g;
    RETURN QUERY SELECT * FROM petrel_deliver_mime(v_account, v_blob, v_size, sha256(p_data),
                                                   p_header_size, p_accounts, p_mailboxes,
                                                   p_msgid, p_refs, p_tree, p_envelope, p_bodystructure, p_body,
                                                   p_headers, p_text, p_sentdate, p_from, p_to,
                                                   p_cc, p_bcc, p_subject);
END $$;
