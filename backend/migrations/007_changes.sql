-- CONDSTORE and QRESYNC (RFC 7162): "what changed since modseq N", the
-- conditional STORE, and the retention of expunge tombstones.
--
-- Every change to a mailbox takes the mailbox row lock and gets
-- highestmodseq + 1 (one modseq per transaction), so modseqs increase in
-- commit order: a reader that saw highestmodseq H has seen every change up
-- to H. Messages keep the modseq of their last change for ever, so "which
-- messages changed since N" is always exact. Expunges are known only from the
-- tombstones in `expunged`, which are pruned after expunge_tombstone_days
-- (backend setting); mailboxes.tombstones_pruned_modseq remembers the
-- highest modseq pruned, so a caller asking for expunges since an older
-- modseq learns that the answer would be incomplete (too_old) and falls back
-- to comparing UID lists.
--
-- petrel_changes(p_account bigint, p_mailbox bigint, p_since int8)
--   RETURNS TABLE(kind int4, uid int8, flags int4, keywords text[], modseq int8,
--                 uidvalidity int8)
--   One snapshot. kind 0, first and once: the mailbox: uid = uidnext,
--   modseq = highestmodseq, flags = 1 when tombstones with modseq > p_since
--   may have been pruned (too_old), uidvalidity set. kind 1: every message
--   with modseq > p_since (uid, flags, keywords, modseq), by uid. kind 2:
--   every tombstone with modseq > p_since (uid, modseq), by uid. P0002 if
--   the mailbox is gone.
-- petrel_meta_since(p_account, p_mailbox, p_lo, p_hi, p_set_seen, p_since int8)
--   petrel_meta restricted to messages with modseq > p_since (FETCH
--   CHANGEDSINCE; 0 for all), with one more column, seen_modseq: with
--   p_set_seen the modseq that setting \Seen would give (rows carrying it
--   are the ones this call changed: the mailbox row lock is held), else 0.
--   Without p_set_seen it reads the messages_modseq index instead of the
--   whole UID range.
-- petrel_store_cond(p_account, p_mailbox, p_lo, p_hi, p_mode, p_flags, p_keywords,
--                   p_unchangedsince int8)
--   RETURNS TABLE(uid int8, flags int4, keywords text[], modseq int8,
--                 changed bool, modified bool)
--   petrel_store with RFC 7162 UNCHANGEDSINCE: with p_unchangedsince not
--   NULL, messages whose modseq is above it are left alone and returned
--   with modified = true (their current state). changed is true on the rows
--   this call updated (they all carry the one new modseq). Every matched
--   row is returned, by uid. P0002 if the mailbox is gone.
-- petrel_expunge_prune(p_account, p_mailbox, p_lo, p_hi, p_require_deleted,
--                      p_keep_days int4)
--   RETURNS TABLE(uid int8, modseq int8)
--   petrel_expunge, then prunes this mailbox's tombstones older than
--   p_keep_days days (0 or NULL: keep them). modseq is the one the expunge
--   gave its tombstones (the same on every row).
-- petrel_prune_tombstones(p_account bigint, p_before timestamptz) RETURNS int8
--   Removes the account's tombstones expunged before p_before (in modseq
--   order per mailbox, stopping at the first younger one) and raises each
--   mailbox's tombstones_pruned_modseq; returns how many went.

ALTER TABLE mailboxes ADD COLUMN tombstones_pruned_modseq bigint NOT NULL DEFAULT 0;

CREATE FUNCTION petrel_changes(p_account bigint, p_mailbox bigint, p_since int8)
RETURNS TABLE(kind int4, uid int8, flags int4, keywords text[], modseq int8, uidvalidity int8)
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_column
DECLARE
    b record;
    v_since int8 := greatest(coalesce(p_since, 0), 0);
BEGIN
    SELECT m.uidnext, m.highestmodseq, m.uidvalidity, m.tombstones_pruned_modseq INTO b
      FROM mailboxes m
     WHERE m.account_id = p_account AND m.id = p_mailbox;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no such mailbox (id %)', p_mailbox USING ERRCODE = 'P0002';
    END IF;
    RETURN QUERY SELECT 0, b.uidnext, (v_since < b.tombstones_pruned_modseq)::int4,
                        NULL::text[], b.highestmodseq, b.uidvalidity;
    IF v_since >= b.highestmodseq THEN
        RETURN;   -- nothing can have changed: skip both index probes
    END IF;
    -- EXECUTE plans with the values known, so the (account, mailbox, modseq)
    -- indexes are used when few rows changed (a cached generic plan would
    -- guess a third of the mailbox and scan it all).
    RETURN QUERY EXECUTE
        'SELECT 1, m.uid, m.flags, m.keywords, m.modseq, NULL::int8
           FROM messages m
          WHERE m.account_id = $1 AND m.mailbox_id = $2 AND m.modseq > $3
          ORDER BY m.uid'
        USING p_account, p_mailbox, v_since;
    RETURN QUERY EXECUTE
        'SELECT 2, e.uid, 0, NULL::text[], e.modseq, NULL::int8
           FROM expunged e
          WHERE e.account_id = $1 AND e.mailbox_id = $2 AND e.modseq > $3
          ORDER BY e.uid'
        USING p_account, p_mailbox, v_since;
END $$;

CREATE FUNCTION petrel_meta_since(p_account bigint, p_mailbox bigint, p_lo int8[], p_hi int8[],
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
        'SELECT m.uid, m.flags, m.keywords, extract(epoch FROM m.internaldate)::int8, m.tz_offset,
                m.size, m.header_size, m.modseq, m.blob_id, 0::int8
           FROM messages m
          WHERE m.account_id = $1 AND m.mailbox_id = $2 AND m.modseq > $3
            AND EXISTS (SELECT 1 FROM petrel__ranges($4, $5) r WHERE m.uid BETWEEN r.lo AND r.hi)
          ORDER BY m.uid'
        USING p_account, p_mailbox, coalesce(p_since, 0), p_lo, p_hi;
END $$;

CREATE FUNCTION petrel_store_cond(p_account bigint, p_mailbox bigint, p_lo int8[], p_hi int8[],
                                  p_mode int4, p_flags int4, p_keywords text[],
                                  p_unchangedsince int8)
RETURNS TABLE(uid int8, flags int4, keywords text[], modseq int8, changed bool, modified bool)
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
               AND (p_unchangedsince IS NULL OR m.modseq <= p_unchangedsince)
        )
        UPDATE messages m
           SET flags = t.new_flags, keywords = t.new_kw, modseq = v_modseq
          FROM target t
         WHERE m.account_id = p_account AND m.mailbox_id = p_mailbox
           AND m.uid BETWEEN r.lo AND r.hi AND m.uid = t.uid
           AND (m.flags <> t.new_flags OR m.keywords <> t.new_kw);
        GET DIAGNOSTICS v_n = ROW_COUNT;
        v_changed := v_changed + v_n;
        -- Rows updated above now carry v_modseq, which no other row can
        -- have (the mailbox row lock is held): that is "changed". A row
        -- above p_unchangedsince was skipped: "modified" (RFC 7162 MODIFIED).
        RETURN QUERY
        SELECT m.uid, m.flags, m.keywords, m.modseq, m.modseq = v_modseq,
               p_unchangedsince IS NOT NULL AND m.modseq > p_unchangedsince
                   AND m.modseq <> v_modseq
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

-- Prunes one mailbox's tombstones expunged before p_before. Walks them in
-- modseq order (the expunged_modseq index) and stops at the first younger
-- one, so the cost is what goes plus one row; everything at or below the
-- cut-off modseq goes, and tombstones_pruned_modseq records it.
CREATE FUNCTION petrel__prune_mailbox(p_account bigint, p_mailbox bigint, p_before timestamptz)
RETURNS int8
LANGUAGE plpgsql AS $$
DECLARE
    v_young int8;
    v_cut int8;
    v_n int8;
BEGIN
    SELECT e.modseq INTO v_young
      FROM expunged e
     WHERE e.account_id = p_account AND e.mailbox_id = p_mailbox AND e.expunged_at >= p_before
     ORDER BY e.modseq
     LIMIT 1;
    IF v_young IS NULL THEN
        SELECT max(e.modseq) INTO v_cut FROM expunged e
         WHERE e.account_id = p_account AND e.mailbox_id = p_mailbox;
    ELSE
        v_cut := v_young - 1;
    END IF;
    IF v_cut IS NULL THEN
        RETURN 0;
    END IF;
    DELETE FROM expunged e
     WHERE e.account_id = p_account AND e.mailbox_id = p_mailbox AND e.modseq <= v_cut;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    IF v_n > 0 THEN
        UPDATE mailboxes m SET tombstones_pruned_modseq = greatest(m.tombstones_pruned_modseq, v_cut)
         WHERE m.account_id = p_account AND m.id = p_mailbox;
    END IF;
    RETURN v_n;
END $$;

CREATE FUNCTION petrel_prune_tombstones(p_account bigint, p_before timestamptz) RETURNS int8
LANGUAGE plpgsql AS $$
DECLARE
    v_total int8 := 0;
    r record;
BEGIN
    FOR r IN SELECT m.id FROM mailboxes m WHERE m.account_id = p_account ORDER BY m.id LOOP
        v_total := v_total + petrel__prune_mailbox(p_account, r.id, p_before);
    END LOOP;
    RETURN v_total;
END $$;

CREATE FUNCTION petrel_expunge_prune(p_account bigint, p_mailbox bigint, p_lo int8[], p_hi int8[],
                                     p_require_deleted bool, p_keep_days int4)
RETURNS TABLE(uid int8, modseq int8)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_uids int8[];
    v_modseq int8;
BEGIN
    v_uids := array(SELECT x.uid FROM petrel_expunge(p_account, p_mailbox, p_lo, p_hi,
                                                     p_require_deleted) x);
    IF coalesce(p_keep_days, 0) > 0 THEN
        PERFORM petrel__prune_mailbox(p_account, p_mailbox,
                                      now() - make_interval(days => p_keep_days));
    END IF;
    IF cardinality(v_uids) = 0 THEN
        RETURN;
    END IF;
    -- The mailbox row is locked by the expunge: this is the modseq it gave.
    SELECT b.highestmodseq INTO v_modseq FROM mailboxes b
     WHERE b.account_id = p_account AND b.id = p_mailbox;
    RETURN QUERY SELECT u, v_modseq FROM unnest(v_uids) u;
END $$;
