-- petrel__thread_for (019) with lookups that are primary-key probes
-- whatever the statistics say.
--
-- Since 015 the APPEND and delivery functions run with generic plans, and
-- a generic plan is made once per connection and kept until the table's
-- statistics change. The lookup joined unnest(ids) to message_threads;
-- planned while message_threads had no statistics yet (a new cluster, or
-- any table before its first ANALYZE), that join became a hash join over a
-- bitmap scan of all the account's rows, so each APPEND read every page
-- holding one of them: 186 buffers and 0.43 ms per call after 1,100
-- messages an account (pg_stat_statements during imap-append; 35% of
-- petrel_append_message's time), growing with the mailbox until autovacuum
-- got round to an ANALYZE. With the table analyzed the same query is a
-- nested loop over the primary key (3 buffers, 0.02 ms).
--
-- Each id is now looked up by a scalar subquery on the full primary key,
-- which PostgreSQL plans as an index probe per id with or without
-- statistics (EXPLAIN on a never-analyzed copy of the table). OFFSET 0
-- keeps the subquery from being flattened into the outer query, where its
-- expression would be copied into both the WHERE and the ORDER BY. Same
-- results, same statements, same locking order as 019.
CREATE OR REPLACE FUNCTION petrel__thread_for(p_account bigint, p_msgid text, p_refs text[])
RETURNS uuid
LANGUAGE plpgsql AS $$
DECLARE
    v_new uuid := gen_random_uuid();
    v_ids text[];
    v_thread uuid;
    v_inserted bigint;
BEGIN
    IF coalesce(cardinality(p_refs), 0) = 0 THEN
        v_ids := CASE WHEN p_msgid IS NOT NULL AND p_msgid <> '' AND octet_length(p_msgid) <= 998
                      THEN ARRAY[p_msgid] ELSE '{}' END;
    ELSE
        -- Candidates in order of preference: the oldest reference first,
        -- the message's own id last.
        SELECT coalesce(array_agg(d.id ORDER BY d.n), '{}') INTO v_ids
          FROM (SELECT u.id, min(u.n) AS n
                  FROM unnest(p_refs || nullif(p_msgid, '')) WITH ORDINALITY AS u(id, n)
                 WHERE u.id IS NOT NULL AND u.id <> '' AND octet_length(u.id) <= 998
                 GROUP BY u.id) d;
    END IF;
    IF cardinality(v_ids) = 0 THEN
        RETURN v_new;
    END IF;
    -- A reply to something known: that thread, and the ids not known yet
    -- go to it.
    SELECT k.threadid INTO v_thread
      FROM (SELECT u.n, (SELECT t.threadid FROM message_threads t
                          WHERE t.account_id = p_account AND t.msgid = u.id) AS threadid
              FROM unnest(v_ids) WITH ORDINALITY AS u(id, n)
            OFFSET 0) k
     WHERE k.threadid IS NOT NULL
     ORDER BY k.n
     LIMIT 1;
    IF v_thread IS NOT NULL THEN
        INSERT INTO message_threads (account_id, msgid, threadid)
        SELECT p_account, u.id, v_thread FROM unnest(v_ids) u(id) ORDER BY u.id COLLATE "C"
        ON CONFLICT (account_id, msgid) DO NOTHING;
        RETURN v_thread;
    END IF;
    -- Nothing known: a new thread, unless a concurrent arrival maps one of
    -- the ids first. The insert waits for it; an id it skipped is known now
    -- and wins over the ones just inserted.
    INSERT INTO message_threads (account_id, msgid, threadid)
    SELECT p_account, u.id, v_new FROM unnest(v_ids) u(id) ORDER BY u.id COLLATE "C"
    ON CONFLICT (account_id, msgid) DO NOTHING;
    GET DIAGNOSTICS v_inserted = ROW_COUNT;
    IF v_inserted = cardinality(v_ids) THEN
        RETURN v_new;
    END IF;
    SELECT k.threadid INTO v_thread
      FROM (SELECT u.n, (SELECT t.threadid FROM message_threads t
                          WHERE t.account_id = p_account AND t.msgid = u.id) AS threadid
              FROM unnest(v_ids) WITH ORDINALITY AS u(id, n)
            OFFSET 0) k
     WHERE k.threadid IS NOT NULL
     ORDER BY k.threadid = v_new, k.n
     LIMIT 1;
    IF v_thread <> v_new THEN
        UPDATE message_threads SET threadid = v_thread
         WHERE account_id = p_account AND msgid = ANY (v_ids) AND threadid = v_new;
    END IF;
    RETURN v_thread;
END $$;
