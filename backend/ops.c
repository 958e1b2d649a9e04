/* The operation table: one row per RPC operation, each implemented in its
 * own op_<name>.c. */
#include "backend.h"

#include "buf.h"

#include <stdlib.h>

void op_login(struct rpc_req *, const Petrel__Request *);
void op_list(struct rpc_req *, const Petrel__Request *);
void op_create(struct rpc_req *, const Petrel__Request *);
void op_select(struct rpc_req *, const Petrel__Request *);
void op_status(struct rpc_req *, const Petrel__Request *);
void op_meta(struct rpc_req *, const Petrel__Request *);
void op_body(struct rpc_req *, const Petrel__Request *);
void op_append(struct rpc_req *, const Petrel__Request *);
void op_store(struct rpc_req *, const Petrel__Request *);
void op_expunge(struct rpc_req *, const Petrel__Request *);
void op_copy(struct rpc_req *, const Petrel__Request *);
void op_rcpt(struct rpc_req *, const Petrel__Request *);
void op_deliver(struct rpc_req *, const Petrel__Request *);
void op_search(struct rpc_req *, const Petrel__Request *);
void op_changes(struct rpc_req *, const Petrel__Request *);
void op_mailbox_delete(struct rpc_req *, const Petrel__Request *);
void op_mailbox_rename(struct rpc_req *, const Petrel__Request *);
void op_subscribe(struct rpc_req *, const Petrel__Request *);
void op_list_ext(struct rpc_req *, const Petrel__Request *);

const struct rpc_op rpc_ops[] = {
    { PETREL__REQUEST__OP_LOGIN, "login", op_login },
    { PETREL__REQUEST__OP_LIST, "list", op_list },
    { PETREL__REQUEST__OP_CREATE, "create", op_create },
    { PETREL__REQUEST__OP_SELECT, "select", op_select },
    { PETREL__REQUEST__OP_STATUS, "status", op_status },
    { PETREL__REQUEST__OP_META, "meta", op_meta },
    { PETREL__REQUEST__OP_BODY, "body", op_body },
    { PETREL__REQUEST__OP_APPEND, "append", op_append },
    { PETREL__REQUEST__OP_STORE, "store", op_store },
    { PETREL__REQUEST__OP_EXPUNGE, "expunge", op_expunge },
    { PETREL__REQUEST__OP_COPY, "copy", op_copy },
    { PETREL__REQUEST__OP_RCPT, "rcpt", op_rcpt },
    { PETREL__REQUEST__OP_DELIVER, "deliver", op_deliver },
    { PETREL__REQUEST__OP_SEARCH, "search", op_search },
    { PETREL__REQUEST__OP_CHANGES, "changes", op_changes },
    { PETREL__REQUEST__OP_MAILBOX_DELETE, "mailbox_delete", op_mailbox_delete },
    { PETREL__REQUEST__OP_MAILBOX_RENAME, "mailbox_rename", op_mailbox_rename },
    { PETREL__REQUEST__OP_SUBSCRIBE, "subscribe", op_subscribe },
    { PETREL__REQUEST__OP_LIST_EXT, "list_ext", op_list_ext },
};
const int rpc_ops_count = sizeof rpc_ops / sizeof rpc_ops[0];

void uid_ranges_to_arrays(const Petrel__UidRanges *r, char **lo_r, char **hi_r)
{
    struct buf lo = {0}, hi = {0};
    buf_puts(&lo, "{");
    buf_puts(&hi, "{");
    size_t n = r ? r->n_bounds / 2 : 0;
    for (size_t i = 0; i < n; i++) {
        buf_printf(&lo, "%s%u", i ? "," : "", r->bounds[2 * i]);
        buf_printf(&hi, "%s%u", i ? "," : "", r->bounds[2 * i + 1]);
    }
    buf_append(&lo, "}", 2);
    buf_append(&hi, "}", 2);
    *lo_r = lo.data;
    *hi_r = hi.data;
}
