/* LOGIN: checks an address and password against the stored crypt(3) hash. */
#include "backend.h"

#include "auth_cache.h"
#include "password.h"

#include <stdlib.h>
#include <string.h>

struct login_state {
    char *password;
};

static void done(const struct db_result *r, void *ctx)
{
    struct rpc_req *req = ctx;
    struct login_state *st = req->state;
    if (r->status != DB_OK) {
        free(st->password);
        free(st);
        rpc_fail_db(req, r);
        return;
    }
    int found = PQntuples(r->res) == 1;
    /* An unknown account costs the same hash computation as a wrong password,
     * so response times do not tell which addresses exist. */
    const char *hash = found ? PQgetvalue(r->res, 0, 2) : password_dummy_hash();
    const char *address = found ? PQgetvalue(r->res, 0, 1) : "";
    int ok = found && auth_cache_hit(address, st->password, hash);
    if (!ok) {
        ok = verify_password(st->password, hash) && found;
        if (ok)
            auth_cache_add(address, st->password, hash);
    }
    explicit_bzero(st->password, strlen(st->password));
    free(st->password);
    free(st);
    if (req->cancelled) {
        rpc_done(req);
        return;
    }
    if (!ok) {
        rpc_fail(req, PETREL__STATUS__NO, "Authentication failed.");
        return;
    }
    Petrel__Response resp = PETREL__RESPONSE__INIT;
    Petrel__LoginResp lr = PETREL__LOGIN_RESP__INIT;
    lr.account_id = db_int(r->res, 0, 0);
    lr.address = PQgetvalue(r->res, 0, 1);
    resp.result_case = PETREL__RESPONSE__RESULT_LOGIN;
    resp.login = &lr;
    rpc_reply(req, &resp);
}

void op_login(struct rpc_req *req, const Petrel__Request *msg)
{
    struct login_state *st = calloc(1, sizeof *st);
    st->password = strdup(msg->login->password);
    req->state = st;
    struct db_param p[] = { { msg->login->username } };
    db_query(backend->db, STMT_LOGIN_LOOKUP, p, 1, done, req);
}
