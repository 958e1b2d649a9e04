-- Mailbox management: DELETE, RENAME, SUBSCRIBE/UNSUBSCRIBE, and the list
-- behind LIST-EXTENDED (RFC 5258), LSUB and LIST-STATUS (RFC 5819). One
-- statement per RPC, every one scoped to p_account.
--
-- Subscriptions live in their own table, keyed by name, not on the mailbox
-- row: RFC 9051 6.3.9 lets a client subscribe to a name that does not exist
-- and forbids the server to drop a subscription because its mailbox went
-- away, so LSUB and LIST (SUBSCRIBED) can return names without mailboxes
-- (\NonExistent). mailboxes.subscribed is no longer read or kept up to date.
--
-- Hierarchy lock: CREATE, DELETE and RENAME first lock the account row
-- (petrel__lock_hierarchy), so that a CREATE of "a/b" cannot slip between
-- DELETE "a"'s check for children and its commit, and two RENAMEs cannot
-- cross. Then the mailbox rows they change are locked (FOR UPDATE), which
-- waits for APPEND/COPY/STORE/EXPUNGE on them (FOR NO KEY UPDATE) and makes
-- those fail with P0002 afterwards, never write into a deleted mailbox.
--
-- petrel_list_ext(p_account bigint, p_subs bool, p_status bool)
--   RETURNS TABLE(name text, special_use text, subscribed bool, has_children bool,
--                 nonexistent bool, messages int, uidnext bigint, uidvalidity bigint,
--                 unseen int, highestmodseq bigint, size bigint)
--   Every mailbox; with p_subs also each subscribed name without a mailbox
--   (nonexistent, counters NULL). Counters are computed only with p_status
--   (else messages, unseen and size are 0). Sorted by name (byte order).
-- petrel_subscribe(p_account bigint, p_name text, p_on bool) RETURNS bigint
--   Adds (p_on) or removes the name; returns the id of the mailbox of that
--   name, NULL if none. 22023 for an invalid name.
-- petrel_mailbox_delete(p_account bigint, p_name text) RETURNS bigint
--   Deletes the mailbox with its messages and tombstones, releases their
--   bodies (blobs.refs; a body no message references any more is deleted
--   with its chunks) and returns the mailbox's id. 22023 for INBOX, P0002
--   if missing, 2BP01 if it has children (Dovecot: delete them first).
--   Subscriptions are left alone.
-- petrel_mailbox_rename(p_account bigint, p_from text, p_to text) RETURNS bigint
--   Renames the mailbox and all below it, keeping ids, UIDVALIDITY and
--   messages; subscriptions of the old names move to the new ones; missing
--   parents of p_to are created (unsubscribed). Returns the mailbox's id.
--   p_from INBOX: a new mailbox p_to (new UIDVALIDITY, INBOX's UIDNEXT and
--   HIGHESTMODSEQ) takes over INBOX's messages with their UIDs; INBOX stays,
--   empty, with tombstones for QRESYNC; INBOX's children do not move;
--   returns the new mailbox's id. P0002 if p_from is missing, 23505 if p_to
--   or any name below it exists, 22023 for an invalid p_to or one below p_from.

CREATE TABLE subscriptions (
    account_id bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name       text COLLATE "C" NOT NULL CHECK (name <> ''),
    PRIMARY KEY (account_id, name)
);

INSERT INTO subscriptions (account_id, name)
SELECT m.account_id, m.name FROM mailboxes m WHERE m.subscribed
ON CONFLICT DO NOTHING;

COMMENT ON COLUMN mailboxes.subscribed IS 'unused since migration 008: see subscriptions';

-- ---------------------------------------------------------------- helpers

CREATE FUNCTION petrel__lock_hierarchy(p_account bigint) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM accounts a WHERE a.id = p_account FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no such account %', p_account USING ERRCODE = 'PT001';
    END IF;
END $$;

-- True if name lies strictly below parent in the hierarchy. Not LIKE: names
-- may hold '_' and '%' is refused anyway, but left() needs no escaping.
CREATE FUNCTION petrel__is_below(p_name text, p_parent text) RETURNS bool
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT left(p_name, length(p_parent) + 1) = p_parent || '/'
$$;

-- Creates the missing superior names of p_name (RFC 3501 CREATE/RENAME).
CREATE FUNCTION petrel__create_parents(p_account bigint, p_name text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_parts text[] := string_to_array(p_name, '/');
    v_parent text;
BEGIN
    FOR i IN 1 .. coalesce(array_length(v_parts, 1), 1) - 1 LOOP
        v_parent := petrel__norm_name(array_to_string(v_parts[1:i], '/'));
        INSERT INTO mailboxes (account_id, name, uidvalidity)
        SELECT p_account, v_parent, petrel__next_uidvalidity(p_account)
         WHERE NOT EXISTS (SELECT 1 FROM mailboxes
                            WHERE account_id = p_account AND name = v_parent);
    END LOOP;
END $$;

-- ---------------------------------------------------------------- replaced

-- New accounts: the default mailboxes, subscribed in the new table.
CREATE OR REPLACE FUNCTION petrel_account_create(p_address text, p_hash text) RETURNS bigint
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
    INSERT INTO subscriptions (account_id, name)
    SELECT v_id, m.name FROM mailboxes m WHERE m.account_id = v_id;
    RETURN v_id;
END $$;

-- subscribed now comes from the subscription list.
CREATE OR REPLACE FUNCTION petrel_list(p_account bigint)
RETURNS TABLE(name text, special_use text, subscribed bool, has_children bool)
LANGUAGE sql STABLE AS $$
    SELECT m.name, m.special_use,
           EXISTS (SELECT 1 FROM subscriptions s WHERE s.account_id = p_account AND s.name = m.name),
           EXISTS (SELECT 1 FROM mailboxes c
                    WHERE c.account_id = p_account
                      AND c.name > m.name || '/' AND c.name < m.name || '0')
      FROM mailboxes m
     WHERE m.account_id = p_account
     ORDER BY m.name
$$;

-- As in 002, after taking the hierarchy lock (see the top of this file).
CREATE OR REPLACE FUNCTION petrel_mailbox_create(p_account bigint, p_name text, p_special_use text)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_name text := petrel__check_name(p_name);
    v_id bigint;
BEGIN
    IF p_special_use IS NOT NULL AND p_special_use NOT IN
       ('\All', '\Archive', '\Drafts', '\Flagged', '\Important', '\Junk', '\Sent', '\Trash') THEN
        RAISE EXCEPTION 'unknown special-use attribute "%"', p_special_use USING ERRCODE = '22023';
    END IF;
    PERFORM petrel__lock_hierarchy(p_account);
    IF EXISTS (SELECT 1 FROM mailboxes WHERE account_id = p_account AND name = v_name) THEN
        RAISE EXCEPTION 'mailbox "%" already exists', v_name USING ERRCODE = '23505';
    END IF;
    PERFORM petrel__create_parents(p_account, v_name);
    INSERT INTO mailboxes (account_id, name, uidvalidity, special_use)
    VALUES (p_account, v_name, petrel__next_uidvalidity(p_account), p_special_use)
    RETURNING id INTO v_id;
    RETURN v_id;
END $$;

-- ---------------------------------------------------------------- new

CREATE FUNCTION petrel_list_ext(p_account bigint, p_subs bool, p_status bool)
RETURNS TABLE(name text, special_use text, subscribed bool, has_children bool,
              nonexistent bool, messages int, uidnext bigint, uidvalidity bigint,
              unseen int, highestmodseq bigint, size bigint)
LANGUAGE sql STABLE AS $$
    SELECT l.* FROM (
        SELECT m.name::text, m.special_use, s.name IS NOT NULL,
               EXISTS (SELECT 1 FROM mailboxes c
                        WHERE c.account_id = p_account
                          AND c.name > m.name || '/' AND c.name < m.name || '0'),
               false, st.n, m.uidnext, m.uidvalidity, st.unseen, m.highestmodseq, st.total
          FROM mailboxes m
          LEFT JOIN subscriptions s ON s.account_id = p_account AND s.name = m.name
         CROSS JOIN LATERAL (
               SELECT count(*)::int AS n,
                      (count(*) FILTER (WHERE x.flags & 1 = 0))::int AS unseen,
                      coalesce(sum(x.size), 0)::bigint AS total
                 FROM messages x
                WHERE p_status AND x.account_id = p_account AND x.mailbox_id = m.id) st
         WHERE m.account_id = p_account
        UNION ALL
        SELECT s.name::text, NULL, true,
               EXISTS (SELECT 1 FROM mailboxes c
                        WHERE c.account_id = p_account
                          AND c.name > s.name || '/' AND c.name < s.name || '0'),
               true, NULL, NULL, NULL, NULL, NULL, NULL
          FROM subscriptions s
         WHERE p_subs AND s.account_id = p_account
           AND NOT EXISTS (SELECT 1 FROM mailboxes m
                            WHERE m.account_id = p_account AND m.name = s.name)
    ) l
    ORDER BY l.name COLLATE "C"
$$;

CREATE FUNCTION petrel_subscribe(p_account bigint, p_name text, p_on bool) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_name text := petrel__check_name(p_name);
BEGIN
    IF p_on THEN
        INSERT INTO subscriptions (account_id, name) VALUES (p_account, v_name)
        ON CONFLICT DO NOTHING;
    ELSE
        DELETE FROM subscriptions WHERE account_id = p_account AND name = v_name;
    END IF;
    RETURN (SELECT m.id FROM mailboxes m WHERE m.account_id = p_account AND m.name = v_name);
END $$;

CREATE FUNCTION petrel_mailbox_delete(p_account bigint, p_name text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_name text := petrel__norm_name(p_name);
    v_id bigint;
    v_blobs int8[];
BEGIN
    IF v_name = 'INBOX' THEN
        RAISE EXCEPTION 'INBOX cannot be deleted' USING ERRCODE = '22023';
    END IF;
    PERFORM petrel__lock_hierarchy(p_account);
    SELECT b.id INTO v_id FROM mailboxes b
     WHERE b.account_id = p_account AND b.name = v_name
       FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no such mailbox "%"', v_name USING ERRCODE = 'P0002';
    END IF;
    IF EXISTS (SELECT 1 FROM mailboxes c
                WHERE c.account_id = p_account
                  AND c.name > v_name || '/' AND c.name < v_name || '0') THEN
        RAISE EXCEPTION 'mailbox "%" has children', v_name USING ERRCODE = '2BP01';
    END IF;
    WITH gone AS (
        DELETE FROM messages m WHERE m.account_id = p_account AND m.mailbox_id = v_id
        RETURNING m.blob_id
    )
    SELECT coalesce(array_agg(g.blob_id), '{}') INTO v_blobs FROM gone g;
    IF cardinality(v_blobs) > 0 THEN
        -- As petrel_expunge: refs changes are row-locked until commit, so a
        -- concurrent append of the same body either holds a reference
        -- already or finds no row and stores the body again.
        UPDATE blobs b SET refs = b.refs - d.n
          FROM (SELECT x.id, count(*)::int AS n FROM unnest(v_blobs) x(id) GROUP BY x.id) d
         WHERE b.account_id = p_account AND b.id = d.id;
        DELETE FROM blobs b
         WHERE b.account_id = p_account AND b.id = ANY (v_blobs) AND b.refs = 0;
    END IF;
    -- Tombstones (expunged) go with the row (ON DELETE CASCADE).
    DELETE FROM mailboxes WHERE account_id = p_account AND id = v_id;
    RETURN v_id;
END $$;

CREATE FUNCTION petrel_mailbox_rename(p_account bigint, p_from text, p_to text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_from text := petrel__norm_name(p_from);
    v_to text := petrel__check_name(p_to);
    v_id bigint;
    v_new bigint;
    v_modseq bigint;
    v_n bigint;
BEGIN
    PERFORM petrel__lock_hierarchy(p_account);
    SELECT b.id INTO v_id FROM mailboxes b
     WHERE b.account_id = p_account AND b.name = v_from
       FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no such mailbox "%"', v_from USING ERRCODE = 'P0002';
    END IF;
    IF EXISTS (SELECT 1 FROM mailboxes c
                WHERE c.account_id = p_account
                  AND (c.name = v_to OR petrel__is_below(c.name, v_to))) THEN
        RAISE EXCEPTION 'mailbox "%" already exists', v_to USING ERRCODE = '23505';
    END IF;

    IF v_from = 'INBOX' THEN
        PERFORM petrel__create_parents(p_account, v_to);
        INSERT INTO mailboxes (account_id, name, uidvalidity, uidnext, highestmodseq)
        SELECT p_account, v_to, petrel__next_uidvalidity(p_account), b.uidnext, b.highestmodseq
          FROM mailboxes b WHERE b.account_id = p_account AND b.id = v_id
        RETURNING id INTO v_new;
        SELECT b.highestmodseq + 1 INTO v_modseq
          FROM mailboxes b WHERE b.account_id = p_account AND b.id = v_id;
        WITH moved AS (
            UPDATE messages m SET mailbox_id = v_new
             WHERE m.account_id = p_account AND m.mailbox_id = v_id
            RETURNING m.uid
        ), tomb AS (
            INSERT INTO expunged (account_id, mailbox_id, uid, modseq)
            SELECT p_account, v_id, mv.uid, v_modseq FROM moved mv
            ON CONFLICT (account_id, mailbox_id, uid)
            DO UPDATE SET modseq = EXCLUDED.modseq, expunged_at = EXCLUDED.expunged_at
        )
        SELECT count(*) INTO v_n FROM moved;
        IF v_n > 0 THEN
            UPDATE mailboxes SET highestmodseq = v_modseq
             WHERE account_id = p_account AND id = v_id;
        END IF;
        RETURN v_new;
    END IF;

    IF petrel__is_below(v_to, v_from) THEN
        RAISE EXCEPTION 'cannot rename mailbox "%" below itself', v_from USING ERRCODE = '22023';
    END IF;
    PERFORM 1 FROM mailboxes b
      WHERE b.account_id = p_account AND petrel__is_below(b.name, v_from)
      ORDER BY b.id FOR UPDATE;
    UPDATE mailboxes b SET name = v_to || substr(b.name, length(v_from) + 1)
     WHERE b.account_id = p_account AND (b.id = v_id OR petrel__is_below(b.name, v_from));
    INSERT INTO subscriptions (account_id, name)
    SELECT p_account, v_to || substr(s.name, length(v_from) + 1)
      FROM subscriptions s
     WHERE s.account_id = p_account AND (s.name = v_from OR petrel__is_below(s.name, v_from))
    ON CONFLICT DO NOTHING;
    DELETE FROM subscriptions s
     WHERE s.account_id = p_account AND (s.name = v_from OR petrel__is_below(s.name, v_from));
    PERFORM petrel__create_parents(p_account, v_to);
    RETURN v_id;
END $$;
