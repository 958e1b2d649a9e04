-- POP3 sizes: STAT, LIST and RETR's "+OK n octets" must count what RETR
-- sends, and RETR sends CRLF line ends (a bare LF goes out as CRLF, an
-- unterminated last line gets one). For a body stored with bare LF that is
-- more than blobs.size.
--
-- blobs.crlf_size  the octets RETR sends for this body (backend/crlf_size.c),
--                  counted by the backend as the body arrives with APPEND.
--                  On the blob, so copies (COPY/MOVE, deduplicated bodies)
--                  share it. NULL where unknown: bodies stored before this
--                  migration, and LMTP deliveries, which the LMTP frontend
--                  always stores with CRLF line ends (there it equals size).
--                  Readers take size then.
--
-- petrel_append_mime(... as 006 ..., p_crlf_size int8)
-- petrel_append_blob_mime(... as 006 ..., p_crlf_size int8)
--   006's functions plus the POP3 size of the body, stored on its blob if
--   the blob has none yet (a deduplicated body may have it already).
-- petrel_meta_crlf(p_account bigint, p_mailbox bigint, p_lo int8[], p_hi int8[])
--   RETURNS TABLE(uid int8, flags int4, keywords text[], internaldate int8,
--                 tz_offset int4, size int8, header_size int8, modseq int8,
--                 blob_id int8, crlf_size int8)
--   petrel_meta without p_set_seen, plus crlf_size (size where unknown), for
--   the POP3 maildrop listing (MetaReq.want_crlf_size). P0002 if the
--   mailbox is gone.

ALTER TABLE blobs ADD COLUMN crlf_size bigint CHECK (crlf_size >= 0);

CREATE FUNCTION petrel__blob_set_crlf_size(p_account bigint, p_mailbox bigint, p_uid int8,
                                           p_crlf_size int8)
RETURNS void
LANGUAGE sql AS $$
    UPDATE blobs b
       SET crlf_size = p_crlf_size
      FROM messages m
     WHERE m.account_id = p_account AND m.mailbox_id = p_mailbox AND m.uid = p_uid
       AND b.account_id = m.account_id AND b.id = m.blob_id
       AND b.crlf_size IS NULL AND p_crlf_size IS NOT NULL
$$;

CREATE FUNCTION petrel_append_mime(p_account bigint, p_mailbox_name text, p_flags int4,
                                   p_keywords text[], p_internaldate int8, p_tz int4,
                                   p_header_size int8, p_data bytea, p_tree bytea,
                                   p_envelope bytea, p_bodystructure bytea, p_body bytea,
                                   p_headers text, p_text text, p_sentdate date,
                                   p_crlf_size int8)
RETURNS TABLE(uidvalidity int8, uid int8, mailbox_id int8, modseq int8)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    r record;
BEGIN
    SELECT * INTO r FROM petrel_append_mime(p_account, p_mailbox_name, p_flags, p_keywords,
                                            p_internaldate, p_tz, p_header_size, p_data, p_tree,
                                            p_envelope, p_bodystructure, p_body, p_headers,
                                            p_text, p_sentdate) a;
    PERFORM petrel__blob_set_crlf_size(p_account, r.mailbox_id, r.uid, p_crlf_size);
    RETURN QUERY SELECT r.uidvalidity, r.uid, r.mailbox_id, r.modseq;
END $$;

CREATE FUNCTION petrel_append_blob_mime(p_account bigint, p_mailbox_name text, p_flags int4,
                                        p_keywords text[], p_internaldate int8, p_tz int4,
                                        p_header_size int8, p_blob bigint, p_size int8,
                                        p_sha256 bytea, p_tree bytea, p_envelope bytea,
                                        p_bodystructure bytea, p_body bytea,
                                        p_headers text, p_text text, p_sentdate date,
                                        p_crlf_size int8)
RETURNS TABLE(uidvalidity int8, uid int8, mailbox_id int8, modseq int8)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    r record;
BEGIN
    SELECT * INTO r FROM petrel_append_blob_mime(p_account, p_mailbox_name, p_flags, p_keywords,
                                                 p_internaldate, p_tz, p_header_size, p_blob,
                                                 p_size, p_sha256, p_tree, p_envelope,
                                                 p_bodystructure, p_body, p_headers, p_text,
                                                 p_sentdate) a;
    PERFORM petrel__blob_set_crlf_size(p_account, r.mailbox_id, r.uid, p_crlf_size);
    RETURN QUERY SELECT r.uidvalidity, r.uid, r.mailbox_id, r.modseq;
END $$;

CREATE FUNCTION petrel_meta_crlf(p_account bigint, p_mailbox bigint, p_lo int8[], p_hi int8[])
RETURNS TABLE(uid int8, flags int4, keywords text[], internaldate int8, tz_offset int4,
              size int8, header_size int8, modseq int8, blob_id int8, crlf_size int8)
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_column
DECLARE
    r record;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM mailboxes WHERE account_id = p_account AND id = p_mailbox) THEN
        RAISE EXCEPTION 'no such mailbox (id %)', p_mailbox USING ERRCODE = 'P0002';
    END IF;
    FOR r IN SELECT * FROM petrel__ranges(p_lo, p_hi) LOOP
        RETURN QUERY
        SELECT m.uid, m.flags, m.keywords, extract(epoch FROM m.internaldate)::int8, m.tz_offset,
               m.size, m.header_size, m.modseq, m.blob_id, coalesce(b.crlf_size, m.size)
          FROM messages m
          JOIN blobs b ON b.account_id = m.account_id AND b.id = m.blob_id
         WHERE m.account_id = p_account AND m.mailbox_id = p_mailbox
           AND m.uid BETWEEN r.lo AND r.hi
         ORDER BY m.uid;
    END LOOP;
END $$;
