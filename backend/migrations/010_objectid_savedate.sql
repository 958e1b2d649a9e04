-- OBJECTID (RFC 8474) and SAVEDATE (RFC 8514).
--
-- Identifiers. Each is a random UUID (gen_random_uuid(), PostgreSQL 13+);
-- backend/objectid.c turns it into the IMAP form, a kind letter and 32 hex
-- digits (F... mailbox, M... message, T... thread, the shape Cyrus sends).
-- Random rather than from a sequence: RFC 8474 7 asks that ids reveal
-- nothing (a counter would tell how many mailboxes or messages the whole
-- cluster has made) and never repeat; 122 random bits do both without a
-- registry of ids ever handed out.
--
-- mailboxes.objectid  MAILBOXID. Kept by RENAME (the row keeps its id);
--                     RENAME INBOX makes a new mailbox, which gets a new
--                     one, and INBOX keeps its own.
-- messages.emailid    EMAILID. New for each APPEND and delivery; COPY and
--                     MOVE copy it (RFC 8474 5.1: the same message in
--                     another mailbox keeps its EMAILID). Per message rather
--                     than derived from the stored body (blobs): bodies are
--                     shared by content and freed with their last message,
--                     so a body id would make two separate APPENDs of the
--                     same bytes one EMAILID and would change when a message
--                     is expunged and appended again. Messages already
--                     stored get one id per (account, body): copies made
--                     before this migration cannot be told apart from
--                     separate APPENDs of the same bytes, and one id per
--                     content keeps the copies together (RFC 8474 allows
--                     identical messages to share an EMAILID).
-- messages.threadid   THREADID. Found once at arrival from Message-ID,
--                     In-Reply-To and References (petrel__thread_for) and
--                     copied by COPY/MOVE, so every message with one EMAILID
--                     has one THREADID and it never changes once reported.
--                     NULL (IMAP NIL) for messages stored before this
--                     migration: their headers were not read at arrival, and
--                     a THREADID must not change later, so none is invented.
-- messages.savedate   SAVEDATE: exists since 001 (DEFAULT now()), so every
--                     message, also one stored before this migration, has the
--                     time its row was inserted: APPEND, delivery, or the
--                     COPY/MOVE that put it into this mailbox. That is exactly
--                     RFC 8514's save date, so nothing is backfilled with an
--                     INTERNALDATE or the migration time, and no message ever
--                     answers NIL. RENAME moves rows without reinserting them,
--                     so their save dates stay.
--
-- Threads. message_threads maps each Message-ID seen in an account (a
-- message's own and every one it refers to) to a thread. A new message joins
-- the thread of the first of its References (oldest first), In-Reply-To and
-- own Message-ID that is known, else starts one; all its ids that were not
-- known are then mapped to that thread. Mapping referenced ids too means a
-- reply that arrives before its parent still meets it: the parent finds its
-- own id already mapped. Threads never merge (a reported THREADID cannot
-- change), and entries outlive their messages, so a late reply to an
-- expunged message still joins its thread. The caller passes the ids
-- (backend/thread_refs.c): the angle-bracket contents, printable ASCII, at
-- most a bounded number of references.
--
-- Concurrency: when none of its ids is known, a message inserts them first
-- (ON CONFLICT DO NOTHING waits for a concurrent transaction inserting the
-- same id and then sees its row) and reads them back, so a message and its
-- reply arriving at once through two backends still share a thread. Inserts
-- go in id order, and always before the mailbox row lock, so two arrivals
-- cannot deadlock on them.
--
-- Functions (conventions of 002_functions.sql):
--
-- petrel_append_message(p_account, p_mailbox_name, p_flags, p_keywords,
--                       p_internaldate, p_tz, p_header_size,
--                       p_data bytea, p_blob int8, p_size int8, p_sha256 bytea,
--                       p_tree, p_envelope, p_bodystructure, p_body,
--                       p_headers, p_text, p_sentdate, p_crlf_size,
--                       p_msgid text, p_refs text[])
--   RETURNS TABLE(uidvalidity int8, uid int8, mailbox_id int8, modseq int8)
--   APPEND, both paths in one definition: the body is p_data (whole), or,
--   with p_data NULL, the staged blob p_blob of p_size bytes whose SHA-256
--   is p_sha256 (a streamed APPEND, as petrel_append_blob). Then the parse
--   (005), the searchable text (006), the POP3 size (009) and the thread.
--   This replaces the chain petrel_append_mime (009) -> (006) -> (005) ->
--   petrel_append (002), and likewise for petrel_append_blob*, with one
--   function; those stay only for backends of the previous release during a
--   rolling restart (their messages get an EMAILID and a NIL THREADID).
-- petrel_deliver(... as 003 ..., p_msgid text, p_refs text[])
-- petrel_deliver_data(... as 003 ..., p_msgid text, p_refs text[])
--   003's delivery with each recipient's message threaded in its account.
-- petrel_copy(...)   as 004, now carrying emailid and threadid.
-- petrel_meta_objectid(p_account, p_mailbox, p_lo int8[], p_hi int8[])
--   RETURNS TABLE(uid int8, emailid uuid, threadid uuid, savedate int8)
--   FETCH EMAILID / THREADID / SAVEDATE (savedate in epoch seconds), by uid.
--   P0002 if the mailbox is gone.
-- petrel_select_objectid(p_account, p_name)     petrel_select + mailboxid
-- petrel_status_objectid(p_account, p_name)     petrel_status + mailboxid
-- petrel_list_ext_objectid(p_account, p_subs, p_status)
--                                               petrel_list_ext + mailboxid
--                                               (NULL for nonexistent names)
-- petrel_mailbox_create_objectid(p_account, p_name, p_special_use)
--   RETURNS TABLE(mailbox_id bigint, mailboxid uuid)   petrel_mailbox_create

-- ---------------------------------------------------------------- schema

-- A volatile default is evaluated per row, so existing mailboxes get
-- distinct ids in the same statement.
ALTER TABLE mailboxes ADD COLUMN objectid uuid NOT NULL DEFAULT gen_random_uuid();

ALTER TABLE messages ADD COLUMN emailid uuid, ADD COLUMN threadid uuid;
UPDATE messages m SET emailid = b.emailid
  FROM (SELECT x.account_id, x.blob_id, gen_random_uuid() AS emailid
          FROM messages x GROUP BY x.account_id, x.blob_id) b
 WHERE m.account_id = b.account_id AND m.blob_id = b.blob_id;
ALTER TABLE messages ALTER COLUMN emailid SET DEFAULT gen_random_uuid(),
                     ALTER COLUMN emailid SET NOT NULL;

CREATE TABLE message_threads (
    account_id bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    -- The contents of <...>: RFC 5322 3.6.4 msg-id without the brackets.
    msgid      text COLLATE "C" NOT NULL CHECK (msgid <> '' AND octet_length(msgid) <= 998),
    threadid   uuid NOT NULL,
    PRIMARY KEY (account_id, msgid)
);

-- ---------------------------------------------------------------- threads

-- The thread of a message arriving in p_account with Message-ID p_msgid
-- (NULL or '' when it has none) that refers to p_refs (References in order,
-- then In-Reply-To). See the top of this file.
CREATE FUNCTION petrel__thread_for(p_account bigint, p_msgid text, p_refs text[])
RETURNS uuid
LANGUAGE plpgsql AS $$
DECLARE
    v_new uuid := gen_random_uuid();
    v_ids text[];
    v_thread uuid;
BEGIN
    -- Candidates in order of preference: the oldest reference first, the
    -- message's own id last.
    SELECT coalesce(array_agg(d.id ORDER BY d.n), '{}') INTO v_ids
      FROM (SELECT u.id, min(u.n) AS n
              FROM unnest(coalesce(p_refs, '{}') || nullif(p_msgid, '')) WITH ORDINALITY AS u(id, n)
             WHERE u.id IS NOT NULL AND u.id <> '' AND octet_length(u.id) <= 998
             GROUP BY u.id) d;
    IF cardinality(v_ids) = 0 THEN
        RETURN v_new;
    END IF;
    -- The usual case, a reply to something known: that thread, and the ids
    -- not known yet go to it.
    SELECT t.threadid INTO v_thread
      FROM unnest(v_ids) WITH ORDINALITY AS u(id, n)
      JOIN message_threads t ON t.account_id = p_account AND t.msgid = u.id
     ORDER BY u.n
     LIMIT 1;
    IF v_thread IS NOT NULL THEN
        INSERT INTO message_threads (account_id, msgid, threadid)
        SELECT p_account, u.id, v_thread FROM unnest(v_ids) u(id) ORDER BY u.id COLLATE "C"
        ON CONFLICT (account_id, msgid) DO NOTHING;
        RETURN v_thread;
    END IF;
    -- Nothing known: a new thread, unless a concurrent arrival maps one of
    -- the ids first. The insert waits for it, and the second look sees it:
    -- an id known before wins over the ones just inserted.
    INSERT INTO message_threads (account_id, msgid, threadid)
    SELECT p_account, u.id, v_new FROM unnest(v_ids) u(id) ORDER BY u.id COLLATE "C"
    ON CONFLICT (account_id, msgid) DO NOTHING;
    SELECT t.threadid INTO v_thread
      FROM unnest(v_ids) WITH ORDINALITY AS u(id, n)
      JOIN message_threads t ON t.account_id = p_account AND t.msgid = u.id
     ORDER BY t.threadid = v_new, u.n
     LIMIT 1;
    IF v_thread <> v_new THEN
        UPDATE message_threads SET threadid = v_thread
         WHERE account_id = p_account AND msgid = ANY (v_ids) AND threadid = v_new;
    END IF;
    RETURN v_thread;
END $$;

-- petrel__add_message (002) with the thread: takes the next UID under the
-- mailbox row lock and inserts the message (emailid by its default).
CREATE FUNCTION petrel__add_threaded(p_account bigint, p_name text, p_flags int4,
                                     p_keywords text[], p_internaldate int8, p_tz int4,
                                     p_header_size int8, p_blob bigint, p_size int8,
                                     p_threadid uuid)
RETURNS TABLE(uidvalidity int8, uid int8, mailbox_id int8, modseq int8)
LANGUAGE plpgsql AS $$
#variable_conflict use_variable
DECLARE
    v_mailbox bigint;
    v_uidvalidity bigint;
    v_uid bigint;
    v_modseq bigint;
BEGIN
    UPDATE mailboxes b
       SET uidnext = b.uidnext + 1, highestmodseq = b.highestmodseq + 1
     WHERE b.account_id = p_account AND b.name = p_name AND b.uidnext <= 4294967295
    RETURNING b.id, b.uidvalidity, b.uidnext - 1, b.highestmodseq
         INTO v_mailbox, v_uidvalidity, v_uid, v_modseq;
    IF NOT FOUND THEN
        IF EXISTS (SELECT 1 FROM mailboxes b WHERE b.account_id = p_account AND b.name = p_name) THEN
            RAISE EXCEPTION 'mailbox "%" has used up its UIDs', p_name USING ERRCODE = '54000';
        END IF;
        RAISE EXCEPTION 'no such mailbox "%"', p_name USING ERRCODE = 'P0002';
    END IF;
    INSERT INTO messages (account_id, mailbox_id, uid, modseq, flags, keywords, internaldate,
                          tz_offset, size, header_size, blob_id, threadid)
    VALUES (p_account, v_mailbox, v_uid, v_modseq, p_flags, p_keywords,
            CASE WHEN coalesce(p_internaldate, 0) = 0 THEN now()
                 ELSE to_timestamp(p_internaldate) END,
            coalesce(p_tz, 0), p_size, p_header_size, p_blob, p_threadid);
    RETURN QUERY SELECT v_uidvalidity, v_uid, v_mailbox, v_modseq;
END $$;

-- ---------------------------------------------------------------- APPEND

-- The body of an APPEND that arrived whole, stored or (same bytes already in
-- the account) shared; returns its blob with one reference taken.
CREATE FUNCTION petrel__blob_from_data(p_account bigint, p_data bytea) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    c_chunk CONSTANT int8 := 262144;
    v_size int8 := octet_length(p_data);
    v_blob bigint;
    v_refs int;
BEGIN
    -- DO UPDATE (not DO NOTHING) locks an existing blob so a concurrent
    -- expunge cannot free it before our message points at it; if that
    -- expunge commits first, the insert is retried and makes a new blob.
    INSERT INTO blobs AS b (account_id, sha256, size, refs)
    VALUES (p_account, sha256(p_data), v_size, 1)
    ON CONFLICT (account_id, sha256) DO UPDATE SET refs = b.refs + 1
    RETURNING b.id, b.refs INTO v_blob, v_refs;
    -- Committed blobs always have refs >= 1, so 1 means we just created it.
    IF v_refs = 1 THEN
        INSERT INTO blob_chunks (account_id, blob_id, seq, data)
        SELECT p_account, v_blob, g::int4, substr(p_data, (g * c_chunk + 1)::int, c_chunk::int)
          FROM generate_series(0::int8, (v_size + c_chunk - 1) / c_chunk - 1) g;
    END IF;
    RETURN v_blob;
END $$;

-- The body of a streamed APPEND: checks the staged chunks hold p_size bytes
-- in the layout petrel_read relies on (from the TOAST headers only), then
-- either keeps the staged blob or, when the account already has the same
-- body, takes a reference to that one and drops the staged copy.
CREATE FUNCTION petrel__blob_from_staged(p_account bigint, p_blob bigint, p_size int8,
                                         p_sha256 bytea) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    c_chunk CONSTANT int8 := 262144;
    v_want int8 := (p_size + c_chunk - 1) / c_chunk;
    v_n int8;
    v_total int8;
    v_short int8;
    v_blob bigint;
BEGIN
    IF octet_length(p_sha256) IS DISTINCT FROM 32 THEN
        RAISE EXCEPTION 'sha256 must be 32 bytes' USING ERRCODE = '22023';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM blobs
                    WHERE account_id = p_account AND id = p_blob AND sha256 IS NULL) THEN
        RAISE EXCEPTION 'no staged blob %', p_blob USING ERRCODE = '22023';
    END IF;
    SELECT count(*), coalesce(sum(octet_length(c.data)), 0),
           count(*) FILTER (WHERE c.seq < v_want - 1 AND octet_length(c.data) <> c_chunk)
      INTO v_n, v_total, v_short
      FROM blob_chunks c
     WHERE c.account_id = p_account AND c.blob_id = p_blob AND c.seq < v_want;
    IF v_n <> v_want OR v_total <> p_size OR v_short <> 0
       OR EXISTS (SELECT 1 FROM blob_chunks c
                   WHERE c.account_id = p_account AND c.blob_id = p_blob AND c.seq >= v_want) THEN
        RAISE EXCEPTION 'staged blob % does not hold % bytes in 262144-byte chunks 0..% (% chunks, % bytes)',
            p_blob, p_size, v_want - 1, v_n, v_total USING ERRCODE = '22023';
    END IF;
    LOOP
        UPDATE blobs SET refs = refs + 1
         WHERE account_id = p_account AND sha256 = p_sha256
        RETURNING id INTO v_blob;
        IF FOUND THEN
            DELETE FROM blobs WHERE account_id = p_account AND id = p_blob;
            RETURN v_blob;
        END IF;
        BEGIN
            UPDATE blobs SET sha256 = p_sha256, size = p_size, refs = 1
             WHERE account_id = p_account AND id = p_blob;
            RETURN p_blob;
        EXCEPTION WHEN unique_violation THEN
            -- A concurrent append stored the same body first: use that one.
            NULL;
        END;
    END LOOP;
END $$;

CREATE FUNCTION petrel_append_message(p_account bigint, p_mailbox_name text, p_flags int4,
                                      p_keywords text[], p_internaldate int8, p_tz int4,
                                      p_header_size int8,
                                      p_data bytea, p_blob bigint, p_size int8, p_sha256 bytea,
                                      p_tree bytea, p_envelope bytea, p_bodystructure bytea,
                                      p_body bytea, p_headers text, p_text text, p_sentdate date,
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
    -- Before the body and the mailbox row lock: see "Concurrency" above.
    v_thread := petrel__thread_for(p_account, p_msgid, p_refs);
    IF p_data IS NOT NULL THEN
        v_blob := petrel__blob_from_data(p_account, p_data);
    ELSE
        v_blob := petrel__blob_from_staged(p_account, p_blob, p_size, p_sha256);
    END IF;
    PERFORM petrel_blob_set_mime(p_account, v_blob, p_tree, p_envelope, p_bodystructure, p_body);
    PERFORM petrel__blob_set_text(p_account, v_blob, p_headers, p_text, p_sentdate);
    UPDATE blobs b SET crlf_size = p_crlf_size
     WHERE b.account_id = p_account AND b.id = v_blob
       AND b.crlf_size IS NULL AND p_crlf_size IS NOT NULL;
    RETURN QUERY SELECT * FROM petrel__add_threaded(p_account, v_name, p_flags, v_kw,
                                                    p_internaldate, p_tz, p_header_size,
                                                    v_blob, v_size, v_thread);
END $$;

-- ---------------------------------------------------------------- LMTP

CREATE FUNCTION petrel_deliver(p_src_account bigint, p_src_blob bigint, p_size int8,
                               p_sha256 bytea, p_header_size int8,
                               p_accounts int8[], p_mailboxes text[],
                               p_msgid text, p_refs text[])
RETURNS TABLE(idx int4, err_state text, err_text text, mailbox text, uidvalidity int8, uid int8)
LANGUAGE plpgsql AS $$
#variable_conflict use_variable
DECLARE
    c_chunk CONSTANT int8 := 262144;
    v_want int8 := (p_size + c_chunk - 1) / c_chunk;
    v_n int8;
    v_total int8;
    v_short int8;
    v_blob bigint;
    v_thread uuid;
    v_state text;
    v_msg text;
    t record;
    r record;
BEGIN
    IF p_accounts IS NULL OR p_mailboxes IS NULL
       OR cardinality(p_accounts) <> cardinality(p_mailboxes)
       OR cardinality(p_accounts) NOT BETWEEN 1 AND 10000 THEN
        RAISE EXCEPTION 'recipients: % accounts and % mailboxes (1..10000 each)',
            cardinality(p_accounts), cardinality(p_mailboxes) USING ERRCODE = '22023';
    END IF;
    IF p_size IS NULL OR p_size < 0 OR p_header_size IS NULL
       OR p_header_size NOT BETWEEN 0 AND p_size THEN
        RAISE EXCEPTION 'header size % does not fit message size %', p_header_size, p_size
            USING ERRCODE = '22023';
    END IF;
    IF octet_length(p_sha256) IS DISTINCT FROM 32 THEN
        RAISE EXCEPTION 'sha256 must be 32 bytes' USING ERRCODE = '22023';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM blobs b
                    WHERE b.account_id = p_src_account AND b.id = p_src_blob AND b.sha256 IS NULL) THEN
        RAISE EXCEPTION 'no staged blob %', p_src_blob USING ERRCODE = '22023';
    END IF;
    -- The layout petrel_read relies on, checked from the TOAST headers only.
    SELECT count(*), coalesce(sum(octet_length(c.data)), 0),
           count(*) FILTER (WHERE c.seq < v_want - 1 AND octet_length(c.data) <> c_chunk)
      INTO v_n, v_total, v_short
      FROM blob_chunks c
     WHERE c.account_id = p_src_account AND c.blob_id = p_src_blob AND c.seq < v_want;
    IF v_n <> v_want OR v_total <> p_size OR v_short <> 0
       OR EXISTS (SELECT 1 FROM blob_chunks c
                   WHERE c.account_id = p_src_account AND c.blob_id = p_src_blob
                     AND c.seq >= v_want) THEN
        RAISE EXCEPTION 'staged blob % does not hold % bytes in 262144-byte chunks 0..% (% chunks, % bytes)',
            p_src_blob, p_size, v_want - 1, v_n, v_total USING ERRCODE = '22023';
    END IF;

    FOR t IN
        WITH rc AS (
            SELECT u.n::int4 AS i, u.a AS acct, petrel__norm_name(coalesce(u.m, '')) AS want
              FROM unnest(p_accounts, p_mailboxes) WITH ORDINALITY AS u(a, m, n)
        ), resolved AS (
            SELECT rc.i, rc.acct,
                   CASE WHEN rc.want <> '' AND EXISTS (SELECT 1 FROM mailboxes b
                                                        WHERE b.account_id = rc.acct
                                                          AND b.name = rc.want)
                        THEN rc.want ELSE 'INBOX' END COLLATE "C" AS name
              FROM rc
        )
        SELECT x.acct, x.name, array_agg(x.i ORDER BY x.i) AS idxs
          FROM resolved x
         GROUP BY x.acct, x.name
         ORDER BY x.acct, x.name
    LOOP
        BEGIN
            -- Threads are per account: a second mailbox of the same account
            -- finds the ids the first one mapped and gets the same thread.
            v_thread := petrel__thread_for(t.acct, p_msgid, p_refs);
            v_blob := petrel__deliver_blob(t.acct, p_src_account, p_src_blob, p_size, p_sha256);
            SELECT * INTO r FROM petrel__add_threaded(t.acct, t.name, 0, '{}', 0, 0, p_header_size,
                                                      v_blob, p_size, v_thread);
            RETURN QUERY SELECT i, '00000'::text, ''::text, t.name::text, r.uidvalidity, r.uid
                           FROM unnest(t.idxs) i;
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_msg = MESSAGE_TEXT;
            RETURN QUERY SELECT i, v_state, v_msg, t.name::text, 0::int8, 0::int8
                           FROM unnest(t.idxs) i;
        END;
    END LOOP;
    DELETE FROM blobs b
     WHERE b.account_id = p_src_account AND b.id = p_src_blob AND b.sha256 IS NULL;
END $$;

CREATE FUNCTION petrel_deliver_data(p_accounts int8[], p_mailboxes text[], p_header_size int8,
                                    p_data bytea, p_msgid text, p_refs text[])
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
    RETURN QUERY SELECT * FROM petrel_deliver(v_account, v_blob, v_size, sha256(p_data),
                                              p_header_size, p_accounts, p_mailboxes,
                                              p_msgid, p_refs);
END $$;

-- ---------------------------------------------------------------- COPY / MOVE

-- As 004, with the message's EMAILID and THREADID carried along; the copy's
-- savedate is its insert time (RFC 8514: the time it was saved into the
-- destination). Same signature, so callers need no change.
CREATE OR REPLACE FUNCTION petrel_copy(p_account bigint, p_src bigint, p_lo int8[], p_hi int8[],
                                       p_dst_name text, p_move bool)
RETURNS TABLE(uidvalidity int8, src_uid int8, dst_uid int8)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_name text := petrel__norm_name(p_dst_name);
    v_dst bigint;
    v_uidvalidity bigint;
    v_base bigint;
    v_modseq bigint;
    v_n bigint;
BEGIN
    SELECT b.id INTO v_dst FROM mailboxes b WHERE b.account_id = p_account AND b.name = v_name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no such mailbox "%"', v_name USING ERRCODE = 'P0002';
    END IF;
    PERFORM 1 FROM mailboxes b
      WHERE b.account_id = p_account AND b.id IN (p_src, v_dst)
      ORDER BY b.id FOR NO KEY UPDATE;
    IF NOT EXISTS (SELECT 1 FROM mailboxes b WHERE b.account_id = p_account AND b.id = p_src) THEN
        RAISE EXCEPTION 'no such mailbox (id %)', p_src USING ERRCODE = 'P0002';
    END IF;

    -- Not 004's petrel__copy_set: a table of that name with 004's columns
    -- could exist in a session that called the old definition.
    CREATE TEMP TABLE IF NOT EXISTS petrel__copy_rows (
        ord bigint, uid bigint, flags int4, keywords text[], internaldate timestamptz,
        tz_offset int4, size bigint, header_size bigint, blob_id bigint,
        emailid uuid, threadid uuid
    ) ON COMMIT DROP;
    TRUNCATE petrel__copy_rows;
    INSERT INTO petrel__copy_rows
    SELECT row_number() OVER (ORDER BY m.uid), m.uid, m.flags, m.keywords, m.internaldate,
           m.tz_offset, m.size, m.header_size, m.blob_id, m.emailid, m.threadid
      FROM messages m, petrel__ranges(p_lo, p_hi) r
     WHERE m.account_id = p_account AND m.mailbox_id = p_src AND m.uid BETWEEN r.lo AND r.hi;
    SELECT count(*) INTO v_n FROM petrel__copy_rows;
    IF v_n = 0 THEN
        RETURN;
    END IF;

    UPDATE mailboxes b
       SET uidnext = b.uidnext + v_n, highestmodseq = b.highestmodseq + 1
     WHERE b.account_id = p_account AND b.id = v_dst AND b.uidnext + v_n - 1 <= 4294967295
    RETURNING b.uidvalidity, b.uidnext - v_n, b.highestmodseq INTO v_uidvalidity, v_base, v_modseq;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'mailbox "%" has used up its UIDs', v_name USING ERRCODE = '54000';
    END IF;
    INSERT INTO messages (account_id, mailbox_id, uid, modseq, flags, keywords, internaldate,
                          tz_offset, size, header_size, blob_id, emailid, threadid)
    SELECT p_account, v_dst, v_base + c.ord - 1, v_modseq, c.flags, c.keywords, c.internaldate,
           c.tz_offset, c.size, c.header_size, c.blob_id, c.emailid, c.threadid
      FROM petrel__copy_rows c;
    UPDATE blobs b SET refs = b.refs + d.n
      FROM (SELECT c.blob_id AS id, count(*)::int AS n FROM petrel__copy_rows c GROUP BY 1) d
     WHERE b.account_id = p_account AND b.id = d.id;

    IF p_move THEN
        PERFORM petrel_expunge(p_account, p_src,
                               (SELECT array_agg(c.uid) FROM petrel__copy_rows c),
                               (SELECT array_agg(c.uid) FROM petrel__copy_rows c), false);
    END IF;
    RETURN QUERY SELECT v_uidvalidity, c.uid, v_base + c.ord - 1
                   FROM petrel__copy_rows c ORDER BY c.ord;
END $$;

-- ---------------------------------------------------------------- reading

CREATE FUNCTION petrel_meta_objectid(p_account bigint, p_mailbox bigint, p_lo int8[], p_hi int8[])
RETURNS TABLE(uid int8, emailid uuid, threadid uuid, savedate int8)
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_column
DECLARE
    r record;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM mailboxes WHERE account_id = p_account AND id = p_mailbox) THEN
        RAISE EXCEPTION 'no such mailbox (id %)', p_mailbox USING ERRCODE = 'P0002';
    END IF;
    -- One statement per merged range, as petrel_meta (002) and for its reason.
    FOR r IN SELECT * FROM petrel__ranges(p_lo, p_hi) LOOP
        RETURN QUERY
        -- floor: the second it was saved in, never the next one (a cast rounds).
        SELECT m.uid, m.emailid, m.threadid, floor(extract(epoch FROM m.savedate))::int8
          FROM messages m
         WHERE m.account_id = p_account AND m.mailbox_id = p_mailbox
           AND m.uid BETWEEN r.lo AND r.hi
         ORDER BY m.uid;
    END LOOP;
END $$;

-- The mailbox functions with the MAILBOXID added. SQL functions over SQL
-- functions, inlined by the planner: one snapshot, and the mailboxes row is
-- reached by its primary key (or the (account_id, name) key).
CREATE FUNCTION petrel_select_objectid(p_account bigint, p_name text)
RETURNS TABLE(mailbox_id bigint, uidvalidity bigint, uidnext bigint, highestmodseq bigint,
              unseen int, first_unseen_uid bigint, uids bytea, mailboxid uuid)
LANGUAGE sql STABLE AS $$
    SELECT s.*, b.objectid
      FROM petrel_select(p_account, p_name) s
      JOIN mailboxes b ON b.account_id = p_account AND b.id = s.mailbox_id
$$;

CREATE FUNCTION petrel_status_objectid(p_account bigint, p_name text)
RETURNS TABLE(messages int, uidnext bigint, uidvalidity bigint, unseen int,
              highestmodseq bigint, size bigint, mailboxid uuid)
LANGUAGE sql STABLE AS $$
    SELECT s.*, b.objectid
      FROM petrel_status(p_account, p_name) s
      JOIN mailboxes b ON b.account_id = p_account AND b.name = petrel__norm_name(p_name)
$$;

CREATE FUNCTION petrel_list_ext_objectid(p_account bigint, p_subs bool, p_status bool)
RETURNS TABLE(name text, special_use text, subscribed bool, has_children bool,
              nonexistent bool, messages int, uidnext bigint, uidvalidity bigint,
              unseen int, highestmodseq bigint, size bigint, mailboxid uuid)
LANGUAGE sql STABLE AS $$
    SELECT l.*, b.objectid
      FROM petrel_list_ext(p_account, p_subs, p_status) l
      LEFT JOIN mailboxes b ON b.account_id = p_account AND b.name = l.name AND NOT l.nonexistent
     ORDER BY l.name COLLATE "C"
$$;

CREATE FUNCTION petrel_mailbox_create_objectid(p_account bigint, p_name text, p_special_use text)
RETURNS TABLE(mailbox_id bigint, mailboxid uuid)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_id bigint := petrel_mailbox_create(p_account, p_name, p_special_use);
BEGIN
    RETURN QUERY SELECT b.id, b.objectid FROM mailboxes b
                  WHERE b.account_id = p_account AND b.id = v_id;
END $$;
