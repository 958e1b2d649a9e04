-- Grows one Petrel INBOX to :total messages for `make bench`'s
-- imap-big-mailbox, in one transaction and a few seconds.
--
--   psql -v address=big1@example.com -v total=100000 -f big_mailbox.sql
--
-- The INBOX must already hold a few hundred messages APPENDed through IMAP
-- (run.sh does that with petrel-bench --workload fill): those carry what the
-- backend's own APPEND path stores (MIME tree, ENVELOPE, BODYSTRUCTURE, the
-- search text with its From/Subject columns). This adds message rows that
-- point at those bodies round-robin, so SEARCH FROM finds a realistic share
-- of matches. Appending 100,000 messages through IMAP instead would take
-- minutes and measure APPEND, which is not what the big-mailbox figures are
-- about. One in four new messages is unseen, as in a lived-in mailbox.
\set ON_ERROR_STOP on
BEGIN;
CREATE TEMP TABLE big_base ON COMMIT DROP AS
SELECT m.account_id, m.mailbox_id, m.flags, m.internaldate, m.tz_offset, m.size,
       m.header_size, m.blob_id, row_number() OVER (ORDER BY m.uid) - 1 AS k
  FROM messages m
  JOIN accounts a ON a.id = m.account_id
  JOIN mailboxes b ON b.account_id = m.account_id AND b.id = m.mailbox_id AND b.name = 'INBOX'
 WHERE a.address = :'address';

SELECT count(*) AS base, coalesce(max(mb.uidnext), 1) AS uid0
  FROM big_base
  JOIN mailboxes mb ON mb.account_id = big_base.account_id AND mb.id = big_base.mailbox_id
\gset
SELECT :base > 0 AS has_base \gset
\if :has_base
\else
    \echo 'big_mailbox.sql: the INBOX of' :'address' 'is empty: fill it through IMAP first'
    \quit 3
\endif
SELECT greatest(:total - :base, 0) AS add \gset

-- The new UIDs continue from uidnext; each gets its own MODSEQ above the
-- mailbox's, as if appended one by one.
INSERT INTO messages (account_id, mailbox_id, uid, modseq, flags, keywords, internaldate,
                      tz_offset, size, header_size, blob_id)
SELECT b.account_id, b.mailbox_id, :uid0 + g - 1, mb.highestmodseq + g,
       CASE WHEN g % 4 = 0 THEN 0 ELSE 1 END, '{}', b.internaldate, b.tz_offset, b.size,
       b.header_size, b.blob_id
  FROM generate_series(1, :add) g
  JOIN big_base b ON b.k = (g - 1) % :base
  JOIN mailboxes mb ON mb.account_id = b.account_id AND mb.id = b.mailbox_id;

UPDATE blobs bl SET refs = bl.refs + x.n
  FROM (SELECT b.account_id, b.blob_id, count(*) AS n
          FROM generate_series(1, :add) g JOIN big_base b ON b.k = (g - 1) % :base
         GROUP BY 1, 2) x
 WHERE bl.account_id = x.account_id AND bl.id = x.blob_id;

UPDATE mailboxes mb SET uidnext = :uid0 + :add, highestmodseq = mb.highestmodseq + :add
  FROM (SELECT DISTINCT account_id, mailbox_id FROM big_base) b
 WHERE mb.account_id = b.account_id AND mb.id = b.mailbox_id;
COMMIT;
VACUUM ANALYZE messages;
VACUUM ANALYZE blobs;
