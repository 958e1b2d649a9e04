/* Every statement the backend runs: each is one call of a SQL function from
 * backend/migrations, so every RPC costs one round trip. */
#include "backend.h"

const struct db_statement db_statements[] = {
    [STMT_LOGIN_LOOKUP] = { "login_lookup", "SELECT account_id, address, password_hash FROM petrel_login_lookup($1)", 1, false },
    [STMT_LIST] = { "list", "SELECT name, special_use, subscribed, has_children FROM petrel_list($1)", 1, false },
    [STMT_MAILBOX_CREATE] = { "mailbox_create", "SELECT mailbox_id, mailboxid FROM petrel_mailbox_create_objectid($1, $2, $3)", 3, false },
    [STMT_SELECT] = { "select", "SELECT mailbox_id, uidvalidity, uidnext, highestmodseq, unseen::int8, first_unseen_uid, uids, mailboxid::text FROM petrel_select_objectid($1, $2)", 2, true },
    [STMT_STATUS] = { "status", "SELECT messages, uidnext, uidvalidity, unseen, highestmodseq, size, mailboxid FROM petrel_status_objectid($1, $2)", 2, false },
    [STMT_META] = { "meta", "SELECT uid, flags, keywords, internaldate, tz_offset, size, header_size, modseq, blob_id FROM petrel_meta($1, $2, $3, $4, $5)", 5, false },
    [STMT_READ] = { "read", "SELECT petrel_read($1, $2, $3, $4, $5)", 5, true },
    [STMT_APPEND] = { "append", "SELECT uidvalidity, uid, mailbox_id, modseq FROM petrel_append_message($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26)", 26, false },
    [STMT_BLOB_BEGIN] = { "blob_begin", "SELECT petrel_blob_begin($1)", 1, false },
    [STMT_BLOB_PUT] = { "blob_put", "SELECT petrel_blob_put($1, $2, $3, $4)", 4, false },
    [STMT_LMTP_RCPT] = { "lmtp_rcpt", "SELECT account_id, address, detail FROM petrel_lmtp_rcpt($1)", 1, false },
    [STMT_DELIVER_BEGIN] = { "deliver_begin", "SELECT account_id, blob_id FROM petrel_deliver_begin($1)", 1, false },
    [STMT_MIME] = { "mime", "SELECT uid, blob_id, size, parsed, mime_tree, envelope, bodystructure, body FROM petrel_mime($1, $2, $3, $4)", 4, true },
    [STMT_BLOB_SET_MIME] = { "blob_set_mime", "SELECT petrel_blob_set_mime($1, $2, $3, $4, $5, $6, $7, $8, $9)", 9, false },
    [STMT_COPY] = { "copy", "SELECT uidvalidity, src_uid, dst_uid FROM petrel_copy($1, $2, $3, $4, $5, $6)", 6, false },
    [STMT_MAILBOX_DELETE] = { "mailbox_delete", "SELECT petrel_mailbox_delete($1, $2)", 2, false },
    [STMT_MAILBOX_RENAME] = { "mailbox_rename", "SELECT petrel_mailbox_rename($1, $2, $3)", 3, false },
    [STMT_SUBSCRIBE] = { "subscribe", "SELECT petrel_subscribe($1, $2, $3)", 3, false },
    [STMT_LIST_EXT] = { "list_ext", "SELECT name, special_use, subscribed, has_children, nonexistent, messages, uidnext, uidvalidity, unseen, highestmodseq, size, mailboxid, deleted FROM petrel_list_ext_deleted($1, $2, $3)", 3, false },
    [STMT_CHANGES] = { "changes", "SELECT kind, uid, flags, keywords, modseq, uidvalidity FROM petrel_changes($1, $2, $3)", 3, false },
    [STMT_META_SINCE] = { "meta_since", "SELECT uid, flags, keywords, internaldate, tz_offset, size, header_size, modseq, blob_id, seen_modseq FROM petrel_meta_since($1, $2, $3, $4, $5, $6)", 6, false },
    [STMT_STORE_COND] = { "store_cond", "SELECT uid, flags, keywords, modseq, changed, modified FROM petrel_store_cond($1, $2, $3, $4, $5, $6, $7, $8)", 8, false },
    [STMT_EXPUNGE_PRUNE] = { "expunge_prune", "SELECT uid, modseq FROM petrel_expunge_prune($1, $2, $3, $4, $5, $6)", 6, false },
    [STMT_SEARCH_UNPARSED] = { "search_unparsed", "SELECT uid, blob_id FROM petrel_search_unparsed($1, $2)", 2, false },
    [STMT_META_CRLF] = { "meta_crlf", "SELECT uid, flags, keywords, internaldate, tz_offset, size, header_size, modseq, blob_id, crlf_size FROM petrel_meta_crlf($1, $2, $3, $4)", 4, false },
    /* STATUS DELETED (RFC 9051): petrel_status_objectid plus a count of \Deleted
     * messages, one round trip, only when asked for. */
    [STMT_STATUS_DELETED] = { "status_deleted", "SELECT s.messages, s.uidnext, s.uidvalidity, s.unseen, s.highestmodseq, s.size, s.mailboxid, (SELECT count(*) FROM mailboxes b JOIN messages m ON m.account_id = b.account_id AND m.mailbox_id = b.id WHERE b.account_id = $1 AND b.name = petrel__norm_name($2) AND m.flags & 8 <> 0) FROM petrel_status_objectid($1, $2) s", 2, false },
    [STMT_META_OBJECTID] = { "meta_objectid", "SELECT uid, emailid, threadid, savedate FROM petrel_meta_objectid($1, $2, $3, $4)", 4, false },
    [STMT_APPEND_STAGE] = { "append_stage", "SELECT petrel_append_stage($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)", 11, false },
    [STMT_APPEND_STAGED] = { "append_staged", "SELECT uidvalidity, uid, mailbox_id, modseq FROM petrel_append_staged($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)", 12, false },
    [STMT_META_INLINE] = { "meta_inline", "SELECT uid, flags, keywords, internaldate, tz_offset, size, header_size, modseq, blob_id, inline_body FROM petrel_meta_inline($1, $2, $3, $4, $5)", 5, true },
    [STMT_DELIVER_MIME] = { "deliver_mime", "SELECT idx, err_state, err_text, mailbox, uidvalidity, uid FROM petrel_deliver_mime($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)", 21, false },
    [STMT_DELIVER_DATA_MIME] = { "deliver_data_mime", "SELECT idx, err_state, err_text, mailbox, uidvalidity, uid FROM petrel_deliver_data_mime($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)", 18, false },
};
const int db_statements_count = sizeof db_statements / sizeof db_statements[0];
