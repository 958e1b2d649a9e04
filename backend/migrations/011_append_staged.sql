-- Streamed APPEND and MULTIAPPEND (RFC 3502; backend/op_append.c): bodies
-- first, messages last.
--
-- Each body is written into a staged blob as it arrives (petrel_blob_begin,
-- petrel_blob_put); as soon as its last byte is in, petrel_append_stage
-- stores its parse and searchable text on that blob and finds its thread,
-- so nothing of a message waits in backend memory. Only when every message
-- of the command has arrived are the messages added, one
-- petrel_append_staged call each, and the transaction commits once: the
-- mailbox row lock that orders UIDs is held from the first of those calls
-- to COMMIT, never while a client is still uploading, and every thread id
-- is claimed before it (the order 010's "Concurrency" requires).
--
-- petrel_append_stage(p_account bigint, p_blob bigint, p_tree bytea,
--                     p_envelope bytea, p_bodystructure bytea, p_body bytea,
--                     p_headers text, p_text text, p_sentdate date,
--                     p_msgid text, p_refs text[])
--   RETURNS uuid: the THREADID for the message (petrel__thread_for).
-- petrel_append_staged(p_account bigint, p_mailbox_name text, p_flags int4,
--                      p_keywords text[], p_internaldate int8, p_tz int4,
--                      p_header_size int8, p_blob bigint, p_size int8,
--                      p_sha256 bytea, p_crlf_size int8, p_threadid uuid)
--   RETURNS TABLE(uidvalidity int8, uid int8, mailbox_id int8, modseq int8)
--   petrel_append_message (010) for a staged blob that carries its parse
--   and a thread found already. When the account stores an identical body
--   (same SHA-256) that blob is used and the staged one dropped; its parse
--   and search text move over first where the stored body has none (an
--   LMTP delivery not parsed yet). Errors as petrel_append_message: P0002
--   for a missing mailbox, 22023 for a bad request, 54000 when UIDs are
--   used up.

CREATE FUNCTION petrel_append_stage(p_account bigint, p_blob bigint, p_tree bytea,
                                    p_envelope bytea, p_bodystructure bytea, p_body bytea,
                                    p_headers text, p_text text, p_sentdate date,
                                    p_msgid text, p_refs text[])
RETURNS uuid
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM blobs
                    WHERE account_id = p_account AND id = p_blob AND sha256 IS NULL) THEN
        RAISE EXCEPTION 'no staged blob %', p_blob USING ERRCODE = '22023';
    END IF;
    PERFORM petrel_blob_set_mime(p_account, p_blob, p_tree, p_envelope, p_bodystructure, p_body);
    PERFORM petrel__blob_set_text(p_account, p_blob, p_headers, p_text, p_sentdate);
    RETURN petrel__thread_for(p_account, p_msgid, p_refs);
END $$;

CREATE FUNCTION petrel_append_staged(p_account bigint, p_mailbox_name text, p_flags int4,
                                     p_keywords text[], p_internaldate int8, p_tz int4,
                                     p_header_size int8, p_blob bigint, p_size int8,
                                     p_sha256 bytea, p_crlf_size int8, p_threadid uuid)
RETURNS TABLE(uidvalidity int8, uid int8, mailbox_id int8, modseq int8)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_name text := petrel__norm_name(p_mailbox_name);
    v_kw text[] := petrel__check_kw(p_keywords);
    v_blob bigint;
BEGIN
    PERFORM petrel__append_check(p_account, v_name, p_flags, p_header_size, p_size);
    UPDATE blobs t
       SET mime_tree = s.mime_tree, envelope = s.envelope,
           bodystructure = s.bodystructure, body = s.body
      FROM blobs s
     WHERE t.account_id = p_account AND t.sha256 = p_sha256 AND t.mime_tree IS NULL
       AND s.account_id = p_account AND s.id = p_blob AND s.sha256 IS NULL
       AND s.mime_tree IS NOT NULL;
    INSERT INTO blob_text (account_id, blob_id, sentdate, headers, body,
                           h_from, h_to, h_cc, h_bcc, h_subject)
    SELECT p_account, t.id, x.sentdate, x.headers, x.body,
           x.h_from, x.h_to, x.h_cc, x.h_bcc, x.h_subject
      FROM blob_text x
      JOIN blobs t ON t.account_id = p_account AND t.sha256 = p_sha256
     WHERE x.account_id = p_account AND x.blob_id = p_blob
    ON CONFLICT (blob_id, account_id) DO NOTHING;
    v_blob := petrel__blob_from_staged(p_account, p_blob, p_size, p_sha256);
    UPDATE blobs b SET crlf_size = p_crlf_size
     WHERE b.account_id = p_account AND b.id = v_blob
       AND b.crlf_size IS NULL AND p_crlf_size IS NOT NULL;
    RETURN QUERY SELECT * FROM petrel__add_threaded(p_account, v_name, p_flags, v_kw,
                                                    p_internaldate, p_tz, p_header_size,
                                                    v_blob, p_size, p_threadid);
END $$;
