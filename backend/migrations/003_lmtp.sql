-- LMTP delivery (backend/op_deliver.c). Same conventions as 002_functions.sql.
--
-- petrel_lmtp_rcpt(p_address text)
--   RETURNS TABLE(account_id bigint, address text, detail text)
--   The account a recipient address names: the one with exactly this address
--   (case-insensitive), else, for local@domain with a "+" in local, the one
--   named by the part before the first "+" (plus-addressing); detail is what
--   follows that "+" (case kept: it names a mailbox), '' for an exact match.
--   No row if unknown.
--
-- One message for many recipients, possibly of several accounts. Bodies are
-- per account (blobs.account_id), so the body is staged once, under the
-- first recipient account that exists, and every other account gets a copy
-- made inside the database (INSERT ... SELECT of the staged chunks, nothing
-- crosses the network again); an account that already holds the same body
-- (by SHA-256) only gains a reference. Note for a later Citus distribution:
-- that copy is the one statement here that reads one account and writes
-- another.
--
-- petrel_deliver_begin(p_accounts int8[])
--   RETURNS TABLE(account_id bigint, blob_id bigint)
--   Stages an empty blob (as petrel_blob_begin) under the first account of
--   p_accounts that exists, locking that account against deletion until the
--   transaction ends. No row when none of them exists. Chunks then go in with
--   petrel_blob_put, all in ONE transaction, as for a streamed APPEND.
--
-- petrel_deliver(p_src_account bigint, p_src_blob bigint, p_size int8,
--                p_sha256 bytea, p_header_size int8,
--                p_accounts int8[], p_mailboxes text[])
--   RETURNS TABLE(idx int4, err_state text, err_text text, mailbox text,
--                 uidvalidity int8, uid int8)
--   Adds the staged message (checked like petrel_append_blob) to every
--   recipient: p_accounts[i] / p_mailboxes[i] for i = 1..n. A mailbox that is
--   '' or does not exist means INBOX (Dovecot's lmtp_save_to_detail_mailbox).
--   Recipients that land in the same mailbox of the same account get ONE
--   message, and every one of them the same result. Each (account, mailbox)
--   is delivered in its own subtransaction, in (account, mailbox) order so
--   concurrent deliveries lock mailboxes in one order and cannot deadlock:
--   a failure (account deleted, mailbox UIDs exhausted, ...) undoes only that
--   delivery and comes back as its row, err_state (the SQLSTATE) <> '00000'
--   and err_text;
--   the other recipients are unaffected. One row per recipient, by idx.
--   The staged blob is dropped at the end unless its account now uses it.
--   Errors that fail the whole call: 22023 (bad arguments, staged blob
--   missing or not holding p_size bytes in 262144-byte chunks).
--
-- petrel_deliver_data(p_accounts int8[], p_mailboxes text[], p_header_size int8,
--                     p_data bytea)
--   RETURNS TABLE(idx int4, err_state text, err_text text, mailbox text,
--                 uidvalidity int8, uid int8)
--   The one-statement form for a message that arrived whole: stages p_data
--   and delivers it as above. No row at all when no account exists.

CREATE FUNCTION petrel_lmtp_rcpt(p_address text)
RETURNS TABLE(account_id bigint, address text, detail text)
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_column
DECLARE
    v_at int;
    v_local text;
    v_plus int;
BEGIN
    RETURN QUERY SELECT a.id, a.address, ''::text FROM accounts a WHERE a.address = lower(p_address);
    IF FOUND THEN
        RETURN;
    END IF;
    -- The domain follows the last "@" (a quoted local part may hold one).
    v_at := length(p_address) - strpos(reverse(p_address), '@') + 1;
    IF strpos(p_address, '@') = 0 OR v_at <= 1 THEN
        RETURN;
    END IF;
    v_local := left(p_address, v_at - 1);
    v_plus := strpos(v_local, '+');
    IF v_plus <= 1 THEN
        RETURN;
    END IF;
    RETURN QUERY
    SELECT a.id, a.address, substr(v_local, v_plus + 1)
      FROM accounts a
     WHERE a.address = lower(left(v_local, v_plus - 1) || substr(p_address, v_at));
END $$;

CREATE FUNCTION petrel_deliver_begin(p_accounts int8[])
RETURNS TABLE(account_id bigint, blob_id bigint)
LANGUAGE plpgsql AS $$
#variable_conflict use_variable
DECLARE
    v_account bigint;
BEGIN
    SELECT a.id INTO v_account
      FROM unnest(p_accounts) WITH ORDINALITY AS u(id, n)
      JOIN accounts a ON a.id = u.id
     ORDER BY u.n
     LIMIT 1
       FOR KEY SHARE OF a;
    IF v_account IS NULL THEN
        RETURN;
    END IF;
    RETURN QUERY SELECT v_account, petrel_blob_begin(v_account);
END $$;

-- The blob p_account's message will point at, with one reference taken for
-- it: a body the account already has, else the staged blob itself (in its
-- own account), else a fresh copy of the staged chunks.
CREATE FUNCTION petrel__deliver_blob(p_account bigint, p_src_account bigint, p_src_blob bigint,
                                     p_size int8, p_sha256 bytea)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_blob bigint;
    v_refs int;
BEGIN
    IF p_account <> p_src_account THEN
        -- DO UPDATE locks an existing blob against a concurrent expunge, as
        -- in petrel_append; refs = 1 means we just created it.
        INSERT INTO blobs AS b (account_id, sha256, size, refs)
        VALUES (p_account, p_sha256, p_size, 1)
        ON CONFLICT (account_id, sha256) DO UPDATE SET refs = b.refs + 1
        RETURNING b.id, b.refs INTO v_blob, v_refs;
        IF v_refs = 1 THEN
            INSERT INTO blob_chunks (account_id, blob_id, seq, data)
            SELECT p_account, v_blob, c.seq, c.data
              FROM blob_chunks c
             WHERE c.account_id = p_src_account AND c.blob_id = p_src_blob;
        END IF;
        RETURN v_blob;
    END IF;
    LOOP
        UPDATE blobs SET refs = refs + 1
         WHERE account_id = p_account AND sha256 = p_sha256
        RETURNING id INTO v_blob;
        IF FOUND THEN
            RETURN v_blob;   -- the staged copy is dropped by petrel_deliver
        END IF;
        BEGIN
            UPDATE blobs SET sha256 = p_sha256, size = p_size, refs = 1
             WHERE account_id = p_account AND id = p_src_blob AND sha256 IS NULL;
            IF NOT FOUND THEN
                RAISE EXCEPTION 'no staged blob %', p_src_blob USING ERRCODE = '22023';
            END IF;
            RETURN p_src_blob;
        EXCEPTION WHEN unique_violation THEN
            -- A concurrent append stored the same body first: use that one.
            NULL;
        END;
    END LOOP;
END $$;

CREATE FUNCTION petrel_deliver(p_src_account bigint, p_src_blob bigint, p_size int8,
                               p_sha256 bytea, p_header_size int8,
                               p_accounts int8[], p_mailboxes text[])
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
            v_blob := petrel__deliver_blob(t.acct, p_src_account, p_src_blob, p_size, p_sha256);
            SELECT * INTO r FROM petrel__add_message(t.acct, t.name, 0, '{}', 0, 0, p_header_size,
                                                     v_blob, p_size);
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
                                    p_data bytea)
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
                                              p_header_size, p_accounts, p_mailboxes);
END $$;
