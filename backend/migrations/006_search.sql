-- Searchable text of each body, for IMAP SEARCH run in the database
-- (backend/op_search.c builds one query per SEARCH over messages and this).
--
-- blob_text holds, per body (so identical copies share it), the decoded text
-- the MIME parser emits (backend/mime): RFC 2047 words decoded, text/* bodies
-- decoded from quoted-printable / base64 and converted to UTF-8, HTML tags
-- dropped, at most about 1 MiB per message. Everything is folded as
-- backend/search_text.c describes (valid UTF-8, no NUL, simple lower case),
-- and search strings are folded the same way, so SEARCH compares with plain
-- LIKE / ~ whatever the database's locale.
--
-- headers   "name: value\n" per field of the message's own header, names in
--           lower case, values unfolded and on one line
-- body      the text of the text/* parts, plus the header fields of embedded
--           messages (message/rfc822) and parts' Content-Type/-Disposition/
--           -Description as "name: value" lines
-- sentdate  the date of the Date: field as written (its own zone), NULL when
--           absent or unparsable (SENT* keys then use the INTERNALDATE's date)
-- h_from, h_to, h_cc, h_bcc, h_subject
--           the values of these fields in headers (several joined by "\n"),
--           so FROM/TO/CC/BCC/SUBJECT test a short string instead of running
--           a regular expression over the whole header
--
-- Filled in the same statement as the message for APPEND, and on first need
-- (SEARCH asks petrel_search_unparsed) for bodies stored without a parse
-- (LMTP) or before this migration.
--
-- A pg_trgm index on headers lets a selective FROM/TO/SUBJECT/... search of
-- a large mailbox read only the matching rows. The extension is trusted
-- (PostgreSQL 13+: a database owner may create it); where it is unavailable
-- or not allowed, SEARCH works the same, reading the mailbox's rows. Bodies
-- are not indexed by default: on mail text the trigram index is larger than
-- the text and adds about as much again to each APPEND's insert; BODY/TEXT
-- read the mailbox's bodies instead (about 2 s per 100,000 messages of 3 KB).
-- A deployment that wants them fast can add
--   CREATE INDEX CONCURRENTLY blob_text_body_trgm ON blob_text USING gin (body gin_trgm_ops);
-- and op_search.c's queries will use it.

CREATE TABLE blob_text (
    account_id bigint NOT NULL,
    blob_id    bigint NOT NULL,
    sentdate   date,
    headers    text NOT NULL,
    body       text NOT NULL,
    h_from     text NOT NULL DEFAULT '',
    h_to       text NOT NULL DEFAULT '',
    h_cc       text NOT NULL DEFAULT '',
    h_bcc      text NOT NULL DEFAULT '',
    h_subject  text NOT NULL DEFAULT '',
    -- blob_id first: a probe always names the blob, and no plan can read
    -- "every row of the account" through this index for each message (with
    -- stale statistics a nested loop doing that was quadratic).
    PRIMARY KEY (blob_id, account_id),
    FOREIGN KEY (account_id, blob_id) REFERENCES blobs (account_id, id) ON DELETE CASCADE
);

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm') THEN
        BEGIN
            CREATE EXTENSION IF NOT EXISTS pg_trgm;
        EXCEPTION WHEN OTHERS THEN
            RAISE NOTICE 'pg_trgm unavailable (%): SEARCH runs without text indexes', SQLERRM;
        END;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN
        CREATE INDEX blob_text_headers_trgm ON blob_text USING gin (headers gin_trgm_ops);
    END IF;
END $$;

-- The values of field p_name (lower case, no regex characters) in a
-- blob_text.headers value, joined by newlines.
CREATE FUNCTION petrel__header_field(p_headers text, p_name text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(string_agg(v[1], E'\n'), '')
      FROM regexp_matches(p_headers, '(?:^|\n)' || p_name || ': ([^\n]*)', 'g') AS v
$$;

-- Stores the text of a body unless it is there already. A body expunged
-- meanwhile (its blob gone) is no error: there is nothing left to search.
CREATE FUNCTION petrel__blob_set_text(p_account bigint, p_blob bigint, p_headers text,
                                      p_body text, p_sentdate date)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    h text := coalesce(p_headers, '');
BEGIN
    INSERT INTO blob_text (account_id, blob_id, sentdate, headers, body,
                           h_from, h_to, h_cc, h_bcc, h_subject)
    VALUES (p_account, p_blob, p_sentdate, h, coalesce(p_body, ''),
            petrel__header_field(h, 'from'), petrel__header_field(h, 'to'),
            petrel__header_field(h, 'cc'), petrel__header_field(h, 'bcc'),
            petrel__header_field(h, 'subject'))
    ON CONFLICT (account_id, blob_id) DO NOTHING;
EXCEPTION WHEN foreign_key_violation THEN
    NULL;
END $$;

-- The versions of 005's functions with the text (three more parameters).
CREATE FUNCTION petrel_blob_set_mime(p_account bigint, p_blob bigint, p_tree bytea,
                                     p_envelope bytea, p_bodystructure bytea, p_body bytea,
                                     p_headers text, p_text text, p_sentdate date)
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM petrel_blob_set_mime(p_account, p_blob, p_tree, p_envelope, p_bodystructure, p_body);
    PERFORM petrel__blob_set_text(p_account, p_blob, p_headers, p_text, p_sentdate);
END $$;

CREATE FUNCTION petrel_append_mime(p_account bigint, p_mailbox_name text, p_flags int4,
                                   p_keywords text[], p_internaldate int8, p_tz int4,
                                   p_header_size int8, p_data bytea, p_tree bytea,
                                   p_envelope bytea, p_bodystructure bytea, p_body bytea,
                                   p_headers text, p_text text, p_sentdate date)
RETURNS TABLE(uidvalidity int8, uid int8, mailbox_id int8, modseq int8)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    r record;
BEGIN
    SELECT * INTO r FROM petrel_append_mime(p_account, p_mailbox_name, p_flags, p_keywords,
                                            p_internaldate, p_tz, p_header_size, p_data, p_tree,
                                            p_envelope, p_bodystructure, p_body) a;
    PERFORM petrel__blob_set_text(p_account, m.blob_id, p_headers, p_text, p_sentdate)
       FROM messages m
      WHERE m.account_id = p_account AND m.mailbox_id = r.mailbox_id AND m.uid = r.uid;
    RETURN QUERY SELECT r.uidvalidity, r.uid, r.mailbox_id, r.modseq;
END $$;

CREATE FUNCTION petrel_append_blob_mime(p_account bigint, p_mailbox_name text, p_flags int4,
                                        p_keywords text[], p_internaldate int8, p_tz int4,
                                        p_header_size int8, p_blob bigint, p_size int8,
                                        p_sha256 bytea, p_tree bytea, p_envelope bytea,
                                        p_bodystructure bytea, p_body bytea,
                                        p_headers text, p_text text, p_sentdate date)
RETURNS TABLE(uidvalidity int8, uid int8, mailbox_id int8, modseq int8)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    r record;
BEGIN
    SELECT * INTO r FROM petrel_append_blob_mime(p_account, p_mailbox_name, p_flags, p_keywords,
                                                 p_internaldate, p_tz, p_header_size, p_blob,
                                                 p_size, p_sha256, p_tree, p_envelope,
                                                 p_bodystructure, p_body) a;
    PERFORM petrel__blob_set_text(p_account, m.blob_id, p_headers, p_text, p_sentdate)
       FROM messages m
      WHERE m.account_id = p_account AND m.mailbox_id = r.mailbox_id AND m.uid = r.uid;
    RETURN QUERY SELECT r.uidvalidity, r.uid, r.mailbox_id, r.modseq;
END $$;

-- How far each mailbox is known to have text: every message with a UID up
-- to uid_done has its blob_text. Bodies never change and blob_text goes only
-- with its blob, and UIDs are committed in ascending order (they are taken
-- under the mailbox row lock), so only messages above the mark need a look.
CREATE TABLE search_text_mark (
    account_id bigint NOT NULL,
    mailbox_id bigint NOT NULL,
    uid_done   bigint NOT NULL,
    PRIMARY KEY (account_id, mailbox_id),
    FOREIGN KEY (account_id, mailbox_id) REFERENCES mailboxes (account_id, id) ON DELETE CASCADE
);

-- Messages of a mailbox whose body has no text yet: SEARCH parses them
-- (mime_ensure) before a query that needs text. When there are none, the
-- mark moves up to the last message, so the next call reads only newer ones.
CREATE FUNCTION petrel_search_unparsed(p_account bigint, p_mailbox bigint)
RETURNS TABLE(uid int8, blob_id int8)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_mark bigint;
    v_last bigint;
BEGIN
    SELECT k.uid_done INTO v_mark FROM search_text_mark k
     WHERE k.account_id = p_account AND k.mailbox_id = p_mailbox;
    v_mark := coalesce(v_mark, 0);
    RETURN QUERY
        SELECT m.uid, m.blob_id
          FROM messages m
         WHERE m.account_id = p_account AND m.mailbox_id = p_mailbox AND m.uid > v_mark
           -- OFFSET 0 keeps this a per-message primary key probe: as a
           -- join, a plan cached for small mailboxes can go quadratic.
           AND NOT EXISTS (SELECT 1 FROM blob_text t
                            WHERE t.blob_id = m.blob_id AND t.account_id = m.account_id
                           OFFSET 0)
         ORDER BY m.uid;
    IF FOUND THEN
        RETURN;
    END IF;
    SELECT max(m.uid) INTO v_last FROM messages m
     WHERE m.account_id = p_account AND m.mailbox_id = p_mailbox AND m.uid > v_mark;
    IF v_last IS NOT NULL THEN
        INSERT INTO search_text_mark AS k (account_id, mailbox_id, uid_done)
        VALUES (p_account, p_mailbox, v_last)
        ON CONFLICT (account_id, mailbox_id) DO UPDATE
           SET uid_done = greatest(k.uid_done, EXCLUDED.uid_done);
    END IF;
EXCEPTION WHEN foreign_key_violation THEN
    NULL;   -- the mailbox was deleted meanwhile
END $$;
