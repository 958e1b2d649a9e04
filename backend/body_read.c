#include "body_read.h"

#include "backend.h"

#include <stdio.h>

void body_read(int64_t account, int64_t mailbox, uint32_t uid, uint64_t off, uint64_t len,
               db_cb *cb, void *ctx)
{
    char acct[24], mbox[24], u[16], o[24], n[24];
    snprintf(acct, sizeof acct, "%lld", (long long)account);
    snprintf(mbox, sizeof mbox, "%lld", (long long)mailbox);
    snprintf(u, sizeof u, "%u", uid);
    snprintf(o, sizeof o, "%llu", (unsigned long long)off);
    snprintf(n, sizeof n, "%llu", (unsigned long long)len);
    struct db_param p[] = { { acct }, { mbox }, { u }, { o }, { n } };
    db_query(backend->db, STMT_READ, p, 5, cb, ctx);
}
