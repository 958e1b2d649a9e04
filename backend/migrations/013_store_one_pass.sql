-- STORE in one pass over the messages, not a self-join.
--
-- 007's petrel_store_cond joined messages to a CTE over the same rows
-- (uid = t.uid). Where the planner has no statistics for messages yet (a
-- new database, or before autoanalyze has seen a bulk insert) it estimates
-- one row on each side and picks a nested loop whose uid match is a join
-- filter: STORE 1:* on 10,000 messages then compares 10^8 pairs and runs for
-- minutes while holding the mailbox row lock. Computing the new flags and
-- keywords in the UPDATE itself (two inlinable SQL functions, so the
-- expressions are written once) leaves nothing to join and the plan is one
-- index range scan whatever the statistics say. Same signature, same
-- results as 007.

CREATE FUNCTION petrel__store_flags(p_mode int4, p_old int4, p_flags int4) RETURNS int4
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE p_mode WHEN 0 THEN p_flags
                       WHEN 1 THEN p_old | p_flags
                       ELSE p_old & ~p_flags END
$$;

-- p_kw is already normalised (petrel__check_kw).
CREATE FUNCTION petrel__store_kw(p_mode int4, p_old text[], p_kw text[]) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN p_mode = 0 THEN p_kw
                WHEN cardinality(p_kw) = 0 THEN p_old
                WHEN p_mode = 1 THEN petrel__kw_norm(p_old || p_kw)
                ELSE array(SELECT k FROM unnest(p_old) k
                            WHERE lower(k) <> ALL (SELECT lower(x) FROM unnest(p_kw) x)
                            ORDER BY lower(k))
           END
$$;

CREATE OR REPLACE FUNCTION petrel_store_cond(p_account bigint, p_mailbox bigint, p_lo int8[],
                                             p_hi int8[], p_mode int4, p_flags int4,
                                             p_keywords text[], p_unchangedsince int8)
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
        UPDATE messages m
           SET flags = petrel__store_flags(p_mode, m.flags, p_flags),
               keywords = petrel__store_kw(p_mode, m.keywords, v_kw),
               modseq = v_modseq
         WHERE m.account_id = p_account AND m.mailbox_id = p_mailbox
           AND m.uid BETWEEN r.lo AND r.hi
           AND (p_unchangedsince IS NULL OR m.modseq <= p_unchangedsince)
           AND (m.flags <> petrel__store_flags(p_mode, m.flags, p_flags)
                OR m.keywords <> petrel__store_kw(p_mode, m.keywords, v_kw));
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
