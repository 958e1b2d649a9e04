-- The parsed MIME structure of each body, stored with the body so FETCH of
-- ENVELOPE, BODYSTRUCTURE, BODY and BODY[section] never re-parses a message.
-- Bodies are shared by content (blobs), so identical copies share one parse.
--
-- mime_tree      the part tree with byte offsets (backend/mime mime_tree_encode)
-- envelope       IMAP ENVELOPE without the outer parentheses
-- bodystructure  IMAP BODYSTRUCTURE, with parentheses
-- body           IMAP BODY (non-extensible), with parentheses
-- The three IMAP strings are bytea, not text: they carry header bytes as
-- the message has them (8-bit, any charset) inside IMAP literals.
--
-- All NULL until parsed: APPEND parses on arrival; anything stored another
-- way (older rows, LMTP today) is parsed on first need and filled in by
-- petrel_blob_set_mime.

ALTER TABLE blobs ADD COLUMN mime_tree bytea,
                  ADD COLUMN envelope bytea,
                  ADD COLUMN bodystructure bytea,
                  ADD COLUMN body bytea;

CREATE FUNCTION petrel_blob_set_mime(p_account bigint, p_blob bigint, p_tree bytea,
                                     p_envelope bytea, p_bodystructure bytea, p_body bytea)
RETURNS void
LANGUAGE sql AS $$
    UPDATE blobs
       SET mime_tree = p_tree, envelope = p_envelope, bodystructure = p_bodystructure, body = p_body
     WHERE account_id = p_account AND id = p_blob AND mime_tree IS NULL
$$;

-- petrel_append / petrel_append_blob plus the parse, in the same statement.
CREATE FUNCTION petrel_append_mime(p_account bigint, p_mailbox_name text, p_flags int4,
                                   p_keywords text[], p_internaldate int8, p_tz int4,
                                   p_header_size int8, p_data bytea, p_tree bytea,
                                   p_envelope bytea, p_bodystructure bytea, p_body bytea)
RETURNS TABLE(uidvalidity int8, uid int8, mailbox_id int8, modseq int8)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    r record;
BEGIN
    SELECT * INTO r FROM petrel_append(p_account, p_mailbox_name, p_flags, p_keywords,
                                       p_internaldate, p_tz, p_header_size, p_data) a;
    PERFORM petrel_blob_set_mime(p_account, m.blob_id, p_tree, p_envelope, p_bodystructure, p_body)
       FROM messages m
      WHERE m.account_id = p_account AND m.mailbox_id = r.mailbox_id AND m.uid = r.uid;
    RETURN QUERY SELECT r.uidvalidity, r.uid, r.mailbox_id, r.modseq;
END $$;

CREATE FUNCTION petrel_append_blob_mime(p_account bigint, p_mailbox_name text, p_flags int4,
                                        p_keywords text[], p_internaldate int8, p_tz int4,
                                        p_header_size int8, p_blob bigint, p_size int8,
                                        p_sha256 bytea, p_tree bytea, p_envelope bytea,
                                        p_bodystructure bytea, p_body bytea)
RETURNS TABLE(uidvalidity int8, uid int8, mailbox_id int8, modseq int8)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    r record;
BEGIN
    SELECT * INTO r FROM petrel_append_blob(p_account, p_mailbox_name, p_flags, p_keywords,
                                            p_internaldate, p_tz, p_header_size, p_blob,
                                            p_size, p_sha256) a;
    PERFORM petrel_blob_set_mime(p_account, m.blob_id, p_tree, p_envelope, p_bodystructure, p_body)
       FROM messages m
      WHERE m.account_id = p_account AND m.mailbox_id = r.mailbox_id AND m.uid = r.uid;
    RETURN QUERY SELECT r.uidvalidity, r.uid, r.mailbox_id, r.modseq;
END $$;

-- The structure of a set of messages, for FETCH ENVELOPE / BODYSTRUCTURE /
-- BODY and section lookups. parsed is false where the body still needs a parse.
CREATE FUNCTION petrel_mime(p_account bigint, p_mailbox bigint, p_lo int8[], p_hi int8[])
RETURNS TABLE(uid int8, blob_id int8, size int8, parsed bool, mime_tree bytea,
              envelope bytea, bodystructure bytea, body bytea)
LANGUAGE sql STABLE AS $$
    SELECT m.uid, m.blob_id, m.size, b.mime_tree IS NOT NULL, b.mime_tree, b.envelope,
           b.bodystructure, b.body
      FROM messages m
      JOIN blobs b ON b.account_id = m.account_id AND b.id = m.blob_id
      JOIN petrel__ranges(p_lo, p_hi) r ON m.uid BETWEEN r.lo AND r.hi
     WHERE m.account_id = p_account AND m.mailbox_id = p_mailbox
     ORDER BY m.uid
$$;
