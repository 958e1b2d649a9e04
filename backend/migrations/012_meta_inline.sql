-- FETCH BODY[] of a small message in one round trip: the metadata of a few
-- UIDs together with the bodies of their small messages, so the frontend
-- need not open a body stream (a second query) per message.
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
