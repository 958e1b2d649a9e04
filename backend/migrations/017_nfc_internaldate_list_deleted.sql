-- Issue #3's remaining details: mailbox names in NFC, INTERNALDATE cut
-- to the second instead of rounded, and STATUS DELETED in LIST-STATUS.
--
-- 1. Mailbox names in Unicode NFC (RFC 9051 5.1, RFC 6855 3: Net-Unicode,
-- RFC 5198). The frontends normalise every name a client sends
-- (frontend/unicode_nfc.h), so "Cafe" + U+0301 finds the mailbox
-- "Caf" + U+00E9; what was stored before, as sent, is renamed here to its
-- NFC form. A name whose NFC form is taken already (a client made both
-- spellings) keeps its name and draws a WARNING, which the backend (or
-- petrel-admin migrate) logs: two mailboxes cannot have one name, and
-- which one should win is the user's call. Names are renamed one by one, not by hierarchy: '/' is a starter
-- that nothing composes with, so the NFC of "a/b" is NFC(a) "/" NFC(b) and
-- children stay under their parent. Subscriptions likewise.
-- normalize() needs a UTF8 database (deploy/local/cluster runs initdb -E
-- UTF8, CloudNativePG's default is UTF8); on another encoding this part is
-- skipped with a WARNING, names stored so far stay as they are, and new
-- ones arrive in NFC all the same.
--
-- 2. INTERNALDATE to the second, cut, not rounded: extract(epoch ...)::int8
-- rounds, so a message stored at 12:00:00.6 (server time: an APPEND without
-- a date, an LMTP delivery) showed 12:00:01, a second it did not exist
-- yet, and a day later if that was 23:59:59.6, while SEARCH ON/BEFORE/SINCE
-- (backend/op_search.c) compare the exact time. The four functions that
-- return it, otherwise as before.
--
-- 3. LIST ... RETURN (STATUS (DELETED)) (RFC 9051 6.3.9 with 6.3.11):
-- petrel_list_ext_deleted(p_account bigint, p_subs bool, p_status bool)
--   RETURNS TABLE(name text, special_use text, subscribed bool, has_children bool,
--                 nonexistent bool, messages int, uidnext bigint, uidvalidity bigint,
--                 unseen int, highestmodseq bigint, size bigint, mailboxid uuid,
--                 deleted int)
--   petrel_list_ext_objectid (010) with the number of messages with
--   \Deleted, counted in the same pass over each mailbox's messages as the
--   other counters (only with p_status, else 0; NULL for nonexistent
--   names). petrel_list_ext and petrel_list_ext_objectid stay for backends
--   of the previous release during a rolling upgrade.

-- ---------------------------------------------------------------- 1. NFC

DO $$
DECLARE
    r record;
BEGIN
    IF current_setting('server_encoding') <> 'UTF8' THEN
        RAISE WARNING 'database encoding is %, not UTF8: mailbox names stored so far are '
                      'not normalised to NFC', current_setting('server_encoding');
        RETURN;
    END IF;
    FOR r IN SELECT account_id, id, name FROM mailboxes
              WHERE name IS NOT NFC NORMALIZED ORDER BY account_id, name LOOP
        BEGIN
            UPDATE mailboxes SET name = normalize(r.name, NFC)
             WHERE account_id = r.account_id AND id = r.id;
        EXCEPTION WHEN unique_violation THEN
            RAISE WARNING 'account %: mailbox "%" (id %) keeps its name: its NFC form is '
                          'another mailbox', r.account_id, r.name, r.id;
        END;
    END LOOP;
    FOR r IN SELECT account_id, name FROM subscriptions
              WHERE name IS NOT NFC NORMALIZED ORDER BY account_id, name LOOP
        BEGIN
            UPDATE subscriptions SET name = normalize(r.name, NFC)
             WHERE account_id = r.account_id AND name = r.name;
        EXCEPTION WHEN unique_violation THEN
            RAISE WARNING 'account %: subscription "%" keeps its name: its NFC form is '
                          'subscribed too', r.account_id, r.name;
        END;
    END LOOP;
END $$;

-- ------------------------------------------------------- 2. INTERNALDATE

-- petrel_meta, as in 002_functions.sql.
CREATE OR REPLACE FUNCTION petrel_meta(p_account bigint, p_mailbox bigint, p_lo int8[], p_hi int8[],
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
        SELECT m.uid, m.flags, m.keywords, floor(extract(epoch FROM m.internaldate))::int8, m.tz_offset,
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

-- petrel_meta_since, as in 007_changes.sql.
CREATE OR REPLACE FUNCTION petrel_meta_since(p_account bigint, p_mailbox bigint, p_lo int8[], p_hi int8[],
                                  p_set_seen bool, p_since int8)
RETURNS TABLE(uid int8, flags int4, keywords text[], internaldate int8, tz_offset int4,
              size int8, header_size int8, modseq int8, blob_id int8, seen_modseq int8)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_next int8;
BEGIN
    IF p_set_seen THEN
        -- Locked here already, so petrel_meta gives exactly v_next. \Seen is
        -- set first (new modseq), so those messages count as changed.
        v_next := petrel__lock_mailbox(p_account, p_mailbox);
        RETURN QUERY SELECT x.*, v_next
                       FROM petrel_meta(p_account, p_mailbox, p_lo, p_hi, true) x
                      WHERE x.modseq > coalesce(p_since, 0);
        RETURN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM mailboxes WHERE account_id = p_account AND id = p_mailbox) THEN
        RAISE EXCEPTION 'no such mailbox (id %)', p_mailbox USING ERRCODE = 'P0002';
    END IF;
    RETURN QUERY EXECUTE
        'SELECT m.uid, m.flags, m.keywords, floor(extract(epoch FROM m.internaldate))::int8, m.tz_offset,
                m.size, m.header_size, m.modseq, m.blob_id, 0::int8
           FROM messages m
          WHERE m.account_id = $1 AND m.mailbox_id = $2 AND m.modseq > $3
            AND EXISTS (SELECT 1 FROM petrel__ranges($4, $5) r WHERE m.uid BETWEEN r.lo AND r.hi)
          ORDER BY m.uid'
        USING p_account, p_mailbox, coalesce(p_since, 0), p_lo, p_hi;
END $$;

-- petrel_meta_crlf, as in 009_pop3_size.sql.
CREATE OR REPLACE FUNCTION petrel_meta_crlf(p_account bigint, p_mailbox bigint, p_lo int8[], p_hi int8[])
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
        SELECT m.uid, m.flags, m.keywords, floor(extract(epoch FROM m.internaldate))::int8, m.tz_offset,
               m.size, m.header_size, m.modseq, m.blob_id, coalesce(b.crlf_size, m.size)
          FROM messages m
          JOIN blobs b ON b.account_id = m.account_id AND b.id = m.blob_id
         WHERE m.account_id = p_account AND m.mailbox_id = p_mailbox
           AND m.uid BETWEEN r.lo AND r.hi
         ORDER BY m.uid;
    END LOOP;
END $$;

-- petrel_meta_inline, as in 012_inline_fetch_parsed_delivery.sql.
CREATE OR REPLACE FUNCTION petrel_meta_inline(p_account bigint, p_mailbox bigint, p_lo int8, p_hi int8,
                                   p_max int8)
RETURNS TABLE(uid int8, flags int4, keywords text, internaldate int8, tz_offset int4,
              size int8, header_size int8, modseq int8, blob_id int8, inline_body bytea)
LANGUAGE sql STABLE AS $$
    SELECT m.uid, m.flags, m.keywords::text, floor(extract(epoch FROM m.internaldate))::int8,
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

-- ------------------------------------------------ 3. LIST-STATUS DELETED

CREATE FUNCTION petrel_list_ext_deleted(p_account bigint, p_subs bool, p_status bool)
RETURNS TABLE(name text, special_use text, subscribed bool, has_children bool,
              nonexistent bool, messages int, uidnext bigint, uidvalidity bigint,
              unseen int, highestmodseq bigint, size bigint, mailboxid uuid, deleted int)
LANGUAGE sql STABLE AS $$
    SELECT l.* FROM (
        SELECT m.name::text, m.special_use, s.name IS NOT NULL,
               EXISTS (SELECT 1 FROM mailboxes c
                        WHERE c.account_id = p_account
                          AND c.name > m.name || '/' AND c.name < m.name || '0'),
               false, st.n, m.uidnext, m.uidvalidity, st.unseen, m.highestmodseq, st.total,
               m.objectid, st.deleted
          FROM mailboxes m
          LEFT JOIN subscriptions s ON s.account_id = p_account AND s.name = m.name
         CROSS JOIN LATERAL (
               SELECT count(*)::int AS n,
                      (count(*) FILTER (WHERE x.flags & 1 = 0))::int AS unseen,
                      (count(*) FILTER (WHERE x.flags & 8 <> 0))::int AS deleted,
                      coalesce(sum(x.size), 0)::bigint AS total
                 FROM messages x
                WHERE p_status AND x.account_id = p_account AND x.mailbox_id = m.id) st
         WHERE m.account_id = p_account
        UNION ALL
        SELECT s.name::text, NULL, true,
               EXISTS (SELECT 1 FROM mailboxes c
                        WHERE c.account_id = p_account
                          AND c.name > s.name || '/' AND c.name < s.name || '0'),
               true, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
          FROM subscriptions s
         WHERE p_subs AND s.account_id = p_account
           AND NOT EXISTS (SELECT 1 FROM mailboxes m
                            WHERE m.account_id = p_account AND m.name = s.name)
    ) l
    ORDER BY l.name COLLATE "C"
$$;
