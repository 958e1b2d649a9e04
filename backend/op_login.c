/* LOGIN: checks an address and password against the stored crypt(3) hash.
 * The hash is computed on a password thread (hash_pool.c), never on the
 * event loop; a recent success is remembered (auth_cache.c). */
#include "backend.h"

#include "auth_cache.h"
#include "hash_pool.h"
#include "password.h"

#include <stdlib.h>
#include <string.h>

struct login_state {
    char *password;
    char *hash;
    int64_t account_id;        /* 0: no such account */
    char *address;             /* canonical, when found */
};

static void state_free(struct login_state *st)
{
    explicit_bzero(st->password, strlen(st->password));
    free(st->password);
    free(st->hash);
    free(st->address);
    free(st);
}

static void answer(struct rpc_req *req, bool ok)
{
    struct login_state *st = req->state;
    req->state = NULL;
    if (req->cancelled) {
        state_free(st);
        rpc_done(req);
        return;
    }
    if (!ok || !st->account_id) {
        state_free(st);
        rpc_fail(req, PETREL__STATUS__NO, "Authentication failed.");
        return;
    }
    Petrel__Response resp = PETREL__RESPONSE__INIT;
    Petrel__LoginResp lr = PETREL__LOGIN_RESP__INIT;
    lr.account_id = st->account_id;
    lr.address = st->address;
    resp.result_case = PETREL__RESPONSE__RESULT_LOGIN;
    resp.login = &lr;
    rpc_reply(req, &resp);
    state_free(st);
}

static void checked(bool ok, void *ctx)
{
    struct rpc_req *req = ctx;
    struct login_state *st = req->state;
    if (ok && st->account_id)
        auth_cache_add(st->address, st->password, st->hash);
    answer(req, ok);
}

static void looked_up(const struct db_result *r, void *ctx)
{
    struct rpc_req *req = ctx;
    struct login_state *st = req->state;
    if (r->status != DB_OK) {
        req->state = NULL;
        state_free(st);
        rpc_fail_db(req, r);
        return;
    }
    bool found = PQntuples(r->res) == 1;
    /* An unknown account costs the same hash computation as a wrong password,
     * so response times do not tell which addresses exist. */
    st->hash = strdup(found ? PQgetvalue(r->res, 0, 2) : password_dummy_hash());
    if (found) {
        st->account_id = db_int(r->res, 0, 0);
        st->address = strdup(PQgetvalue(r->res, 0, 1));
        if (auth_cache_hit(st->address, st->password, st->hash)) {
            answer(req, true);
            return;
        }
    }
    hash_pool_verify(st->password, st->hash, checked, req);
}

void op_login(struct rpc_req *req, const Petrel__Request *msg)
{
    struct login_state *st = calloc(1, sizeof *st);
    st->password = strdup(msg->login->password);
    req->state = st;
    struct db_param p[] = { { msg->login->username } };
    db_query(backend->db, STMT_LOGIN_LOOKUP, p, 1, looked_up, req);
}
