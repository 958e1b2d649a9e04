-- Petrel data API: every backend RPC is one call of one of these functions,
-- so it costs one round trip. All account data is reached through
-- p_account (first argument) so each call stays on one shard.
--
-- Errors (SQLSTATE -> meaning for the frontend):
--   P0002  no such mailbox (by name: APPEND maps it to [TRYCREATE];
--          by id: the mailbox was deleted under the session)
--   PT001  no such account
--   23505  already exists (account address, mailbox name)
--   22023  invalid argument (bad name, flags, keyword, range arrays,
--          staged blob that is missing or malformed, negative length)
--   54000  mailbox UID space exhausted (uidnext would pass 2^32-1)
--   XX001  stored body is damaged (chunks missing)
--
-- UID ranges (p_lo, p_hi): parallel arrays of inclusive bounds; they may
-- overlap and come in any order. NULL arrays mean "every message". '*' must
-- be resolved by the caller (it knows the highest UID from SELECT).
--
-- petrel_account_create(p_address text, p_hash text) RETURNS bigint
--   New account (address lower-cased) with INBOX, Drafts, Sent, Trash, Junk,
--   Archive (special-use set), all subscribed. 23505 if the address exists.
-- petrel_account_delete(p_address text) RETURNS bigint
--   Deletes the account and all its data; returns its id, NULL if unknown.
-- petrel_account_passwd(p_address text, p_hash text) RETURNS bigint
--   Replaces the password hash; returns the account id, NULL if unknown.
-- petrel_account_list() RETURNS TABLE(account_id bigint, address text, created timestamptz)
--   Every account, by address (administration only: it spans all shards).
-- petrel_login_lookup(p_address text)
--   RETURNS TABLE(account_id bigint, address text, password_hash text)
--   Case-insensitive; no row if unknown.
-- petrel_list(p_account bigint)
--   RETURNS TABLE(name text, special_use text, subscribed bool, has_children bool)
--   Every mailbox, sorted by name (byte order).
-- petrel_mailbox_create(p_account bigint, p_name text, p_special_use text) RETURNS bigint
--   Creates the mailbox (and any missing parents, unsubscribed); returns its
--   id. 23505 if it exists, 22023 for an invalid name or special-use.
-- petrel_select(p_account bigint, p_name text)
--   RETURNS TABLE(mailbox_id bigint, uidvalidity bigint, uidnext bigint,
--                 highestmodseq bigint, unseen int, first_unseen_uid bigint, uids bytea)
--   uids: every UID ascending, each as 4 bytes unsigned big-endian.
--   first_unseen_uid NULL when all are seen. No row if no such mailbox.
-- petrel_status(p_account bigint, p_name text)
--   RETURNS TABLE(messages int, uidnext bigint, uidvalidity bigint, unseen int,
--                 highestmodseq bigint, size bigint)
--   No row if no such mailbox.
-- petrel_meta(p_account bigint, p_mailbox bigint, p_lo int8[], p_hi int8[], p_set_seen bool)
--   RETURNS TABLE(uid int8, flags int4, keywords text[], internaldate int8,
--                 tz_offset int4, size int8, header_size int8, modseq int8, blob_id int8)
--   Messages in the ranges, by uid; internaldate in epoch seconds. With
--   p_set_seen, \Seen is first set where missing (one new modseq, as STORE).
--   P0002 if the mailbox is gone.
-- petrel_read(p_account bigint, p_mailbox bigint, p_uid int8, p_offset int8, p_length int4)
--   RETURNS bytea: body bytes [offset, offset+length) clipped to the size
--   (empty past the end); NULL if no such message. Reads only the chunks
--   that overlap the range.
-- petrel_append(p_account bigint, p_mailbox_name text, p_flags int4, p_keywords text[],
--               p_internaldate int8, p_tz int4, p_header_size int8, p_data bytea)
--   RETURNS TABLE(uidvalidity int8, uid int8, mailbox_id int8, modseq int8)
--   Stores the body (deduplicated by SHA-256 within the account) and adds
--   the message with the next UID. p_internaldate 0 or NULL means now().
--   P0002 if the mailbox does not exist ([TRYCREATE]).
-- petrel_blob_begin(p_account bigint) RETURNS bigint
-- petrel_blob_put(p_account bigint, p_blob bigint, p_seq int4, p_data bytea) RETURNS void
-- petrel_append_blob(p_account bigint, p_mailbox_name text, p_flags int4, p_keywords text[],
--                    p_internaldate int8, p_tz int4, p_header_size int8,
--                    p_blob bigint, p_size int8, p_sha256 bytea)
--   RETURNS TABLE(uidvalidity int8, uid int8, mailbox_id int8, modseq int8)
--   Streamed APPEND, all in ONE transaction on one connection: begin stages
--   an empty blob, put adds chunk p_seq (0, 1, ...; each exactly 262144
--   bytes except the last), append_blob checks the chunks add up to p_size
--   and adds the message. p_sha256 is the caller's hash of the whole body
--   (not re-computed here, which would read it all back); if the account
--   already has that body the staged copy is dropped. A staged blob left by
--   an aborted transaction vanishes with it; one committed by mistake is
--   removed by petrel_gc.
-- petrel_store(p_account bigint, p_mailbox bigint, p_lo int8[], p_hi int8[],
--              p_mode int4, p_flags int4, p_keywords text[])
--   RETURNS TABLE(uid int8, flags int4, keywords text[], modseq int8)
--   p_mode 0 replace, 1 add, 2 remove. Rows that change get one new modseq
--   (the mailbox's highestmodseq is bumped once per call); every matched
--   row is returned, by uid. P0002 if the mailbox is gone.
-- petrel_expunge(p_account bigint, p_mailbox bigint, p_lo int8[], p_hi int8[],
--                p_require_deleted bool) RETURNS TABLE(uid int8)
--   Deletes the messages in the ranges (only \Deleted ones if
--   p_require_deleted), leaves tombstones with one new modseq, frees bodies
--   no longer referenced, returns the uids ascending. P0002 if the mailbox
--   is gone.
-- petrel_gc(p_account bigint) RETURNS int
--   Removes blobs no message references that are over an hour old (staged
--   blobs committed by mistake); returns how many. Normal operation needs it
--   not: expunge frees bodies itself.
--
-- Functions named petrel__* are internal helpers.
--
-- Concurrency: everything that changes a mailbox's messages first locks its
-- mailboxes row (the UPDATE of uidnext/highestmodseq), so per mailbox the
-- changes are serialised, UIDs and modseqs grow in commit order, and a
-- function sees a stable mailbox while it works.

-- ---------------------------------------------------------------- helpers

-- "INBOX" is case-insensitive (RFC 3501); translate() rather than upper()
-- so that no locale can map a non-ASCII name onto it.
CREATE FUNCTION petrel__norm_name(p_name text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN translate(p_name, 'inbox', 'INBOX') = 'INBOX' THEN 'INBOX' ELSE p_name END
$$;

CREATE FUNCTION petrel__check_name(p_name text) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF p_name IS NULL OR p_name = '' THEN
        RAISE EXCEPTION 'mailbox name is empty' USING ERRCODE = '22023';
    END IF;
    IF octet_length(p_name) > 1000 THEN
        RAISE EXCEPTION 'mailbox name is longer than 1000 bytes' USING ERRCODE = '22023';
    END IF;
    IF p_name LIKE '/%' OR p_name LIKE '%/' OR p_name LIKE '%//%' THEN
        RAISE EXCEPTION 'mailbox name "%" has an empty hierarchy level', p_name USING ERRCODE = '22023';
    END IF;
    -- * and % are LIST wildcards; control characters break the protocol.
    IF p_name ~ '[*%[:cntrl:]]' THEN
        RAISE EXCEPTION 'mailbox name "%" contains a wildcard or control character', p_name
            USING ERRCODE = '22023';
    END IF;
    RETURN petrel__norm_name(p_name);
END $$;

-- Canonical keyword set: case-insensitively unique (first spelling wins),
-- sorted, so equal sets are equal arrays and STORE can tell "no change".
CREATE FUNCTION petrel__kw_norm(p_kw text[]) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(array_agg(k ORDER BY lower(k)), '{}')
    FROM (SELECT DISTINCT ON (lower(k)) k
          FROM unnest(p_kw) WITH ORDINALITY AS u(k, n)
          WHERE k IS NOT NULL
          ORDER BY lower(k), n) d
$$;

CREATE FUNCTION petrel__check_kw(p_kw text[]) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    k text;
BEGIN
    FOREACH k IN ARRAY coalesce(p_kw, '{}') LOOP
        -- A system flag here would be a frontend bug: those travel as bits.
        IF k IS NULL OR k = '' OR k ~ '[\\(){%*"\]\s[:cntrl:]]' OR k !~ '^[\x21-\x7e]+$' THEN
            RAISE EXCEPTION 'invalid keyword "%"', k USING ERRCODE = '22023';
        END IF;
    END LOOP;
    RETURN petrel__kw_norm(p_kw);
END $$;

CREATE FUNCTION petrel__check_flags(p_flags int4) RETURNS int4
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF p_flags IS NULL OR p_flags < 0 OR p_flags > 31 THEN
        RAISE EXCEPTION 'invalid flag bits %', p_flags USING ERRCODE = '22023';
    END IF;
    RETURN p_flags;
END $$;

-- Merges possibly overlapping, unordered inclusive ranges into disjoint,
-- ascending ones, so that visiting them in turn meets each message once and
-- in UID order.
CREATE FUNCTION petrel__ranges(p_lo int8[], p_hi int8[]) RETURNS TABLE(lo int8, hi int8)
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF p_lo IS NULL AND p_hi IS NULL THEN
        RETURN QUERY SELECT 1::int8, 4294967295::int8;
        RETURN;
    END IF;
    IF p_lo IS NULL OR p_hi IS NULL OR cardinality(p_lo) <> cardinality(p_hi) THEN
        RAISE EXCEPTION 'UID range bounds differ in length (% vs %)',
            cardinality(p_lo), cardinality(p_hi) USING ERRCODE = '22023';
    END IF;
    RETURN QUERY
    WITH r AS (
        SELECT least(a, b) AS lo, greatest(a, b) AS hi
        FROM unnest(p_lo, p_hi) AS u(a, b)
        WHERE a IS NOT NULL AND b IS NOT NULL
    ), starts AS (
        SELECT r.lo, r.hi,
               r.lo > coalesce(max(r.hi) OVER (ORDER BY r.lo, r.hi
                   ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) + 1, -1) AS new_group
        FROM r
    ), groups AS (
        SELECT s.lo, s.hi, count(*) FILTER (WHERE s.new_group) OVER (ORDER BY s.lo, s.hi) AS g
        FROM starts s
    )
    SELECT min(g2.lo), max(g2.hi) FROM groups g2 GROUP BY g2.g ORDER BY 1;
END $$;

CREATE FUNCTION petrel__next_uidvalidity(p_account bigint) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v bigint;
BEGIN
    -- Seconds since the epoch, but strictly increasing per account so a
    -- mailbox recreated within the same second still gets a new value.
    UPDATE accounts
       SET uidvalidity_last = greatest(uidvalidity_last + 1,
                                       extract(epoch FROM clock_timestamp())::bigint)
     WHERE id = p_account
    RETURNING uidvalidity_last INTO v;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no such account %', p_account USING ERRCODE = 'PT001';
    END IF;
    RETURN v;
END $$;

-- Locks the mailbox row (serialising changes to its messages) and returns
-- the modseq a change made now would get.
CREATE FUNCTION petrel__lock_mailbox(p_account bigint, p_mailbox bigint) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v bigint;
BEGIN
    SELECT b.highestmodseq + 1 INTO v
      FROM mailboxes b
     WHERE b.account_id = p_account AND b.id = p_mailbox
       FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no such mailbox (id %)', p_mailbox USING ERRCODE = 'P0002';
    END IF;
    RETURN v;
END $$;

-- ---------------------------------------------------------------- accounts

CREATE FUNCTION petrel_account_create(p_address text, p_hash text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_id bigint;
BEGIN
    INSERT INTO accounts (address, password_hash)
    VALUES (lower(p_address), p_hash)
    RETURNING id INTO v_id;
    INSERT INTO mailboxes (account_id, name, uidvalidity, subscribed, special_use)
    SELECT v_id, d.name, petrel__next_uidvalidity(v_id), true, d.special_use
      FROM (VALUES (1, 'INBOX', NULL), (2, 'Drafts', '\Drafts'), (3, 'Sent', '\Sent'),
                   (4, 'Trash', '\Trash'), (5, 'Junk', '\Junk'), (6, 'Archive', '\Archive'))
           AS d(n, name, special_use)
     ORDER BY d.n;
    RETURN v_id;
END $$;

CREATE FUNCTION petrel_account_delete(p_address text) RETURNS bigint
LANGUAGE sql AS $$
    DELETE FROM accounts WHERE address = lower(p_address) RETURNING id
$$;

CREATE FUNCTION petrel_account_passwd(p_address text, p_hash text) RETURNS bigint
LANGUAGE sql AS $$
    UPDATE accounts SET password_hash = p_hash WHERE address = lower(p_address) RETURNING id
$$;

CREATE FUNCTION petrel_account_list()
RETURNS TABLE(account_id bigint, address text, created timestamptz)
LANGUAGE sql STABLE AS $$
    SELECT a.id, a.address, a.created FROM accounts a ORDER BY a.address
$$;

CREATE FUNCTION petrel_login_lookup(p_address text)
RETURNS TABLE(account_id bigint, address text, password_hash text)
LANGUAGE sql STABLE AS $$
    SELECT a.id, a.address, a.password_hash FROM accounts a WHERE a.address = lower(p_address)
$$;

-- ---------------------------------------------------------------- mailboxes

CREATE FUNCTION petrel_list(p_account bigint)
RETURNS TABLE(name text, special_use text, subscribed bool, has_children bool)
LANGUAGE sql STABLE AS $$
    SELECT m.name, m.special_use, m.subscribed,
           EXISTS (SELECT 1 FROM mailboxes c
                    WHERE c.account_id = p_account
                      AND c.name > m.name || '/' AND c.name < m.name || '0')
      FROM mailboxes m
     WHERE m.account_id = p_account
     ORDER BY m.name
$$;

CREATE FUNCTION petrel_mailbox_create(p_account bigint, p_name text, p_special_use text)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_name text := petrel__check_name(p_name);
    v_parent text;
    v_id bigint;
    i int;
BEGIN
    IF p_special_use IS NOT NULL AND p_special_use NOT IN
       ('\All', '\Archive', '\Drafts', '\Flagged', '\Important', '\Junk', '\Sent', '\Trash') THEN
        RAISE EXCEPTION 'unknown special-use attribute "%"', p_special_use USING ERRCODE = '22023';
    END IF;
    IF EXISTS (SELECT 1 FROM mailboxes WHERE account_id = p_account AND name = v_name) THEN
        RAISE EXCEPTION 'mailbox "%" already exists', v_name USING ERRCODE = '23505';
    END IF;
    -- RFC 3501 CREATE: superior hierarchy names are created as needed.
    FOR i IN 1 .. array_length(string_to_array(v_name, '/'), 1) - 1 LOOP
        v_parent := petrel__norm_name(array_to_string((string_to_array(v_name, '/'))[1:i], '/'));
        INSERT INTO mailboxes (account_id, name, uidvalidity)
        SELECT p_account, v_parent, petrel__next_uidvalidity(p_account)
         WHERE NOT EXISTS (SELECT 1 FROM mailboxes
                            WHERE account_id = p_account AND name = v_parent);
    END LOOP;
    INSERT INTO mailboxes (account_id, name, uidvalidity, special_use)
    VALUES (p_account, v_name, petrel__next_uidvalidity(p_account), p_special_use)
    RETURNING id INTO v_id;
    RETURN v_id;
END $$;

CREATE FUNCTION petrel_select(p_account bigint, p_name text)
RETURNS TABLE(mailbox_id bigint, uidvalidity bigint, uidnext bigint, highestmodseq bigint,
              unseen int, first_unseen_uid bigint, uids bytea)
LANGUAGE sql STABLE AS $$
    SELECT b.id, b.uidvalidity, b.uidnext, b.highestmodseq,
           (SELECT count(*)::int FROM messages m
             WHERE m.account_id = p_account AND m.mailbox_id = b.id AND m.flags & 1 = 0),
           (SELECT min(m.uid) FROM messages m
             WHERE m.account_id = p_account AND m.mailbox_id = b.id AND m.flags & 1 = 0),
           -- Low 4 bytes of the 8-byte big-endian form: unsigned 32-bit
           -- even above 2^31, where int4send would overflow. Ordered by a
           -- subquery (walked in primary key order) rather than by
           -- string_agg(... ORDER BY), which sorts the bytea values and
           -- doubles the time on 100,000 messages; a sorted subquery cannot
           -- be flattened or aggregated in parallel, so its order holds.
           (SELECT coalesce(string_agg(u.piece, ''::bytea), ''::bytea)
              FROM (SELECT substr(int8send(m.uid), 5) AS piece
                      FROM messages m
                     WHERE m.account_id = p_account AND m.mailbox_id = b.id
                     ORDER BY m.uid) u)
      FROM mailboxes b
     WHERE b.account_id = p_account AND b.name = petrel__norm_name(p_name)
$$;

CREATE FUNCTION petrel_status(p_account bigint, p_name text)
RETURNS TABLE(messages int, uidnext bigint, uidvalidity bigint, unseen int,
              highestmodseq bigint, size bigint)
LANGUAGE sql STABLE AS $$
    SELECT s.n, b.uidnext, b.uidvalidity,
           (SELECT count(*)::int FROM messages m
             WHERE m.account_id = p_account AND m.mailbox_id = b.id AND m.flags & 1 = 0),
           b.highestmodseq, s.total
      FROM mailboxes b
     CROSS JOIN LATERAL (SELECT count(*)::int AS n, coalesce(sum(m.size), 0)::bigint AS total
                           FROM messages m
                          WHERE m.account_id = p_account AND m.mailbox_id = b.id) s
     WHERE b.account_id = p_account AND b.name = petrel__norm_name(p_name)
$$;

-- ---------------------------------------------------------------- messages

-- The range functions below loop over the merged ranges, one statement per
-- range: "uid BETWEEN lo AND hi" with constants then always gets the primary
-- key range scan (or a plain scan for 1:*), where a join against a set of
-- ranges is planned as a scan of the whole mailbox. Disjoint ranges visited
-- in ascending order also make the output ascending without a final sort.
CREATE FUNCTION petrel_meta(p_account bigint, p_mailbox bigint, p_lo int8[], p_hi int8[],
                            p_set_seen bool)
RETURNS TABLE(uid int8, flags int4, keywords text[], internaldate int8, tz_offset int4,
              size int8, header_size int8, modseq int8, blob_id int8)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_modseq bigint;
    v_changed bigint := 0;
    v_n bigint;
    r record;
BEGIN
    IF p_set_seen THEN
        v_modseq := petrel__lock_mailbox(p_account, p_mailbox);
    ELSIF NOT EXISTS (SELECT 1 FROM mailboxes WHERE account_id = p_account AND id = p_mailbox) THEN
        RAISE EXCEPTION 'no such mailbox (id %)', p_mailbox USING ERRCODE = 'P0002';
    END IF;
    FOR r IN SELECT * FROM petrel__ranges(p_lo, p_hi) LOOP
        IF p_set_seen THEN
            UPDATE messages m SET flags = m.flags | 1, modseq = v_modseq
             WHERE m.account_id = p_account AND m.mailbox_id = p_mailbox
               AND m.uid BETWEEN r.lo AND r.hi AND m.flags & 1 = 0;
            GET DIAGNOSTICS v_n = ROW_COUNT;
            v_changed := v_changed + v_n;
        END IF;
        RETURN QUERY
        SELECT m.uid, m.flags, m.keywords, extract(epoch FROM m.internaldate)::int8, m.tz_offset,
               m.size, m.header_size, m.modseq, m.blob_id
          FROM messages m
         WHERE m.account_id = p_account AND m.mailbox_id = p_mailbox
           AND m.uid BETWEEN r.lo AND r.hi
         ORDER BY m.uid;
    END LOOP;
    IF v_changed > 0 THEN
        UPDATE mailboxes SET highestmodseq = v_modseq
         WHERE account_id = p_account AND id = p_mailbox;
    END IF;
END $$;

CREATE FUNCTION petrel_read(p_account bigint, p_mailbox bigint, p_uid int8, p_offset int8,
                            p_length int4) RETURNS bytea
LANGUAGE plpgsql STABLE AS $$
DECLARE
    c_chunk CONSTANT int8 := 262144;
    v_blob bigint;
    v_size bigint;
    v_lo int8;
    v_hi int8;
    v_out bytea;
BEGIN
    IF p_offset IS NULL OR p_offset < 0 OR p_length IS NULL OR p_length < 0 THEN
        RAISE EXCEPTION 'invalid read range offset % length %', p_offset, p_length
            USING ERRCODE = '22023';
    END IF;
    SELECT m.blob_id, m.size INTO v_blob, v_size
      FROM messages m
     WHERE m.account_id = p_account AND m.mailbox_id = p_mailbox AND m.uid = p_uid;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    v_lo := least(p_offset, v_size);
    v_hi := least(p_offset + p_length, v_size);
    IF v_hi <= v_lo THEN
        RETURN ''::bytea;
    END IF;
    -- substr() of an EXTERNAL (uncompressed) value fetches only the TOAST
    -- slices it covers, so only the requested bytes are read.
    SELECT string_agg(substr(c.data, (greatest(v_lo, c.seq * c_chunk) - c.seq * c_chunk + 1)::int,
                             (least(v_hi, (c.seq + 1) * c_chunk) - greatest(v_lo, c.seq * c_chunk))::int),
                      ''::bytea ORDER BY c.seq)
      INTO v_out
      FROM blob_chunks c
     WHERE c.account_id = p_account AND c.blob_id = v_blob
       AND c.seq BETWEEN v_lo / c_chunk AND (v_hi - 1) / c_chunk;
    IF coalesce(octet_length(v_out), 0) <> v_hi - v_lo THEN
        RAISE EXCEPTION 'body of message uid % (blob %) is damaged: got % of % bytes',
            p_uid, v_blob, coalesce(octet_length(v_out), 0), v_hi - v_lo USING ERRCODE = 'XX001';
    END IF;
    RETURN v_out;
END $$;

-- Takes the next UID (locking the mailbox row until commit, which is what
-- orders concurrent appends) and inserts the message pointing at p_blob.
CREATE FUNCTION petrel__add_message(p_account bigint, p_name text, p_flags int4,
                                    p_keywords text[], p_internaldate int8, p_tz int4,
                                    p_header_size int8, p_blob bigint, p_size int8)
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
                          tz_offset, size, header_size, blob_id)
    VALUES (p_account, v_mailbox, v_uid, v_modseq, p_flags, p_keywords,
            CASE WHEN coalesce(p_internaldate, 0) = 0 THEN now()
                 ELSE to_timestamp(p_internaldate) END,
            coalesce(p_tz, 0), p_size, p_header_size, p_blob);
    RETURN QUERY SELECT v_uidvalidity, v_uid, v_mailbox, v_modseq;
END $$;

-- Argument checks shared by both append paths, done before any body is
-- written so a bad request or [TRYCREATE] costs nothing.
CREATE FUNCTION petrel__append_check(p_account bigint, p_name text, p_flags int4,
                                     p_header_size int8, p_size int8)
RETURNS void
LANGUAGE plpgsql STABLE AS $$
BEGIN
    PERFORM petrel__check_flags(p_flags);
    IF p_size IS NULL OR p_header_size IS NULL OR p_header_size < 0 OR p_header_size > p_size THEN
        RAISE EXCEPTION 'header size % does not fit message size %', p_header_size, p_size
            USING ERRCODE = '22023';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM mailboxes WHERE account_id = p_account AND name = p_name) THEN
        RAISE EXCEPTION 'no such mailbox "%"', p_name USING ERRCODE = 'P0002';
    END IF;
END $$;

CREATE FUNCTION petrel_append(p_account bigint, p_mailbox_name text, p_flags int4,
                              p_keywords text[], p_internaldate int8, p_tz int4,
                              p_header_size int8, p_data bytea)
RETURNS TABLE(uidvalidity int8, uid int8, mailbox_id int8, modseq int8)
LANGUAGE plpgsql AS $$
DECLARE
    c_chunk CONSTANT int8 := 262144;
    v_name text := petrel__norm_name(p_mailbox_name);
    v_kw text[] := petrel__check_kw(p_keywords);
    v_size int8 := octet_length(p_data);
    v_blob bigint;
    v_refs int;
BEGIN
    PERFORM petrel__append_check(p_account, v_name, p_flags, p_header_size, v_size);
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
    RETURN QUERY SELECT * FROM petrel__add_message(p_account, v_name, p_flags, v_kw,
                                                   p_internaldate, p_tz, p_header_size,
                                                   v_blob, v_size);
END $$;

CREATE FUNCTION petrel_blob_begin(p_account bigint) RETURNS bigint
LANGUAGE sql AS $$
    INSERT INTO blobs (account_id) VALUES (p_account) RETURNING id
$$;

CREATE FUNCTION petrel_blob_put(p_account bigint, p_blob bigint, p_seq int4, p_data bytea)
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM blobs
                    WHERE account_id = p_account AND id = p_blob AND sha256 IS NULL) THEN
        RAISE EXCEPTION 'no staged blob %', p_blob USING ERRCODE = '22023';
    END IF;
    IF p_seq IS NULL OR p_seq < 0 OR octet_length(p_data) IS NULL
       OR octet_length(p_data) NOT BETWEEN 1 AND 262144 THEN
        RAISE EXCEPTION 'invalid chunk % of % bytes for blob % (1..262144 bytes)',
            p_seq, octet_length(p_data), p_blob USING ERRCODE = '22023';
    END IF;
    INSERT INTO blob_chunks (account_id, blob_id, seq, data)
    VALUES (p_account, p_blob, p_seq, p_data);
END $$;

CREATE FUNCTION petrel_append_blob(p_account bigint, p_mailbox_name text, p_flags int4,
                                   p_keywords text[], p_internaldate int8, p_tz int4,
                                   p_header_size int8, p_blob bigint, p_size int8,
                                   p_sha256 bytea)
RETURNS TABLE(uidvalidity int8, uid int8, mailbox_id int8, modseq int8)
LANGUAGE plpgsql AS $$
DECLARE
    c_chunk CONSTANT int8 := 262144;
    v_name text := petrel__norm_name(p_mailbox_name);
    v_kw text[] := petrel__check_kw(p_keywords);
    v_want int8 := (p_size + c_chunk - 1) / c_chunk;
    v_n int8;
    v_total int8;
    v_short int8;
    v_blob bigint;
BEGIN
    PERFORM petrel__append_check(p_account, v_name, p_flags, p_header_size, p_size);
    IF octet_length(p_sha256) IS DISTINCT FROM 32 THEN
        RAISE EXCEPTION 'sha256 must be 32 bytes' USING ERRCODE = '22023';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM blobs
                    WHERE account_id = p_account AND id = p_blob AND sha256 IS NULL) THEN
        RAISE EXCEPTION 'no staged blob %', p_blob USING ERRCODE = '22023';
    END IF;
    -- octet_length of a TOASTed value reads only its header: this checks
    -- the layout petrel_read relies on without reading the body back.
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
            EXIT;
        END IF;
        BEGIN
            UPDATE blobs SET sha256 = p_sha256, size = p_size, refs = 1
             WHERE account_id = p_account AND id = p_blob;
            v_blob := p_blob;
            EXIT;
        EXCEPTION WHEN unique_violation THEN
            -- A concurrent append stored the same body first: use that one.
            NULL;
        END;
    END LOOP;
    RETURN QUERY SELECT * FROM petrel__add_message(p_account, v_name, p_flags, v_kw,
                                                   p_internaldate, p_tz, p_header_size,
                                                   v_blob, p_size);
END $$;

CREATE FUNCTION petrel_store(p_account bigint, p_mailbox bigint, p_lo int8[], p_hi int8[],
                             p_mode int4, p_flags int4, p_keywords text[])
RETURNS TABLE(uid int8, flags int4, keywords text[], modseq int8)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_kw text[] := petrel__check_kw(p_keywords);
    v_modseq bigint;
    v_changed bigint := 0;
    v_n bigint;
    r record;
BEGIN
    PERFORM petrel__check_flags(p_flags);
    IF p_mode IS NULL OR p_mode NOT IN (0, 1, 2) THEN
        RAISE EXCEPTION 'invalid store mode % (0 replace, 1 add, 2 remove)', p_mode
            USING ERRCODE = '22023';
    END IF;
    v_modseq := petrel__lock_mailbox(p_account, p_mailbox);
    FOR r IN SELECT * FROM petrel__ranges(p_lo, p_hi) LOOP
        WITH target AS (
            SELECT m.uid,
                   CASE p_mode WHEN 0 THEN p_flags
                               WHEN 1 THEN m.flags | p_flags
                               ELSE m.flags & ~p_flags END AS new_flags,
                   -- Skip the keyword helper per row when keywords are
                   -- untouched: STORE 1:* +FLAGS (\Seen) on a big mailbox.
                   CASE WHEN p_mode = 0 THEN v_kw
                        WHEN cardinality(v_kw) = 0 THEN m.keywords
                        WHEN p_mode = 1 THEN petrel__kw_norm(m.keywords || v_kw)
                        ELSE array(SELECT k FROM unnest(m.keywords) k
                                    WHERE lower(k) <> ALL (SELECT lower(x) FROM unnest(v_kw) x)
                                    ORDER BY lower(k))
                   END AS new_kw
              FROM messages m
             WHERE m.account_id = p_account AND m.mailbox_id = p_mailbox
               AND m.uid BETWEEN r.lo AND r.hi
        )
        UPDATE messages m
           SET flags = t.new_flags, keywords = t.new_kw, modseq = v_modseq
          FROM target t
         WHERE m.account_id = p_account AND m.mailbox_id = p_mailbox
           AND m.uid BETWEEN r.lo AND r.hi AND m.uid = t.uid
           AND (m.flags <> t.new_flags OR m.keywords <> t.new_kw);
        GET DIAGNOSTICS v_n = ROW_COUNT;
        v_changed := v_changed + v_n;
        RETURN QUERY
        SELECT m.uid, m.flags, m.keywords, m.modseq
          FROM messages m
         WHERE m.account_id = p_account AND m.mailbox_id = p_mailbox
           AND m.uid BETWEEN r.lo AND r.hi
         ORDER BY m.uid;
    END LOOP;
    IF v_changed > 0 THEN
        UPDATE mailboxes SET highestmodseq = v_modseq
         WHERE account_id = p_account AND id = p_mailbox;
    END IF;
END $$;

CREATE FUNCTION petrel_expunge(p_account bigint, p_mailbox bigint, p_lo int8[], p_hi int8[],
                               p_require_deleted bool)
RETURNS TABLE(uid int8)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_modseq bigint;
    v_uids int8[] := '{}';
    v_blobs int8[] := '{}';
    r record;
BEGIN
    v_modseq := petrel__lock_mailbox(p_account, p_mailbox);
    FOR r IN SELECT * FROM petrel__ranges(p_lo, p_hi) LOOP
        WITH gone AS (
            DELETE FROM messages m
             WHERE m.account_id = p_account AND m.mailbox_id = p_mailbox
               AND m.uid BETWEEN r.lo AND r.hi
               AND (NOT coalesce(p_require_deleted, true) OR m.flags & 8 <> 0)
            RETURNING m.uid, m.blob_id
        ), tomb AS (
            INSERT INTO expunged (account_id, mailbox_id, uid, modseq)
            SELECT p_account, p_mailbox, g.uid, v_modseq FROM gone g
            ON CONFLICT (account_id, mailbox_id, uid)
            DO UPDATE SET modseq = EXCLUDED.modseq, expunged_at = EXCLUDED.expunged_at
        )
        SELECT v_uids || coalesce(array_agg(g.uid ORDER BY g.uid), '{}'),
               v_blobs || coalesce(array_agg(g.blob_id), '{}')
          INTO v_uids, v_blobs
          FROM gone g;
    END LOOP;
    IF cardinality(v_uids) = 0 THEN
        RETURN;
    END IF;
    UPDATE mailboxes SET highestmodseq = v_modseq WHERE account_id = p_account AND id = p_mailbox;
    UPDATE blobs b SET refs = b.refs - d.n
      FROM (SELECT x.id, count(*)::int AS n FROM unnest(v_blobs) x(id) GROUP BY x.id) d
     WHERE b.account_id = p_account AND b.id = d.id;
    -- refs changes are row-locked until commit, so a concurrent append
    -- either already holds a reference (refs > 0 here) or, once we commit,
    -- no longer finds the blob and stores its own copy.
    DELETE FROM blobs b WHERE b.account_id = p_account AND b.id = ANY (v_blobs) AND b.refs = 0;
    RETURN QUERY SELECT unnest(v_uids);
END $$;

CREATE FUNCTION petrel_gc(p_account bigint) RETURNS int
LANGUAGE sql AS $$
    WITH gone AS (
        DELETE FROM blobs
         WHERE account_id = p_account AND refs = 0 AND created < now() - interval '1 hour'
        RETURNING 1
    )
    SELECT count(*)::int FROM gone
$$;
