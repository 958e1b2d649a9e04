-- Issue #3's remaining details, part 1: mailbox names in NFC.
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
