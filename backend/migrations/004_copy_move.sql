-- COPY and MOVE (RFC 9051 6.4.7, RFC 6851) in one statement each.
--
-- petrel_copy(p_account, p_src mailbox id, p_lo[], p_hi[], p_dst_name, p_move)
--   RETURNS TABLE(uidvalidity int8, src_uid int8, dst_uid int8)
-- Copies the messages of p_src within the UID ranges into the mailbox named
-- p_dst_name, in UID order, with their flags, keywords and INTERNALDATE;
-- bodies are shared (blob refs counted), not copied. New UIDs are allocated
-- in one step under the destination's row lock, so they are consecutive and
-- increase in commit order like APPEND's. With p_move the originals are then
-- expunged (tombstones, new modseq) in the same transaction: a MOVE is never
-- seen half done. Mailbox rows are locked in id order, so two opposite MOVEs
-- cannot deadlock. Raises P0002 when either mailbox does not exist.

CREATE FUNCTION petrel_copy(p_account bigint, p_src bigint, p_lo int8[], p_hi int8[],
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

    CREATE TEMP TABLE IF NOT EXISTS petrel__copy_set (
        ord bigint, uid bigint, flags int4, keywords text[], internaldate timestamptz,
        tz_offset int4, size bigint, header_size bigint, blob_id bigint
    ) ON COMMIT DROP;
    TRUNCATE petrel__copy_set;
    INSERT INTO petrel__copy_set
    SELECT row_number() OVER (ORDER BY m.uid), m.uid, m.flags, m.keywords, m.internaldate,
           m.tz_offset, m.size, m.header_size, m.blob_id
      FROM messages m, petrel__ranges(p_lo, p_hi) r
     WHERE m.account_id = p_account AND m.mailbox_id = p_src AND m.uid BETWEEN r.lo AND r.hi;
    SELECT count(*) INTO v_n FROM petrel__copy_set;
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
                          tz_offset, size, header_size, blob_id)
    SELECT p_account, v_dst, v_base + c.ord - 1, v_modseq, c.flags, c.keywords, c.internaldate,
           c.tz_offset, c.size, c.header_size, c.blob_id
      FROM petrel__copy_set c;
    UPDATE blobs b SET refs = b.refs + d.n
      FROM (SELECT c.blob_id AS id, count(*)::int AS n FROM petrel__copy_set c GROUP BY 1) d
     WHERE b.account_id = p_account AND b.id = d.id;

    IF p_move THEN
        PERFORM petrel_expunge(p_account, p_src,
                               (SELECT array_agg(c.uid) FROM petrel__copy_set c),
                               (SELECT array_agg(c.uid) FROM petrel__copy_set c), false);
    END IF;
    RETURN QUERY SELECT v_uidvalidity, c.uid, v_base + c.ord - 1
                   FROM petrel__copy_set c ORDER BY c.ord;
END $$;
