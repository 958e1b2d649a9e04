/* LOGIN (RFC 9051 6.2.3): the password is checked by a backend. */
#include "imap/imap_session.h"

#include "auth_policy.h"
#include "cluster_state.h"
#include "conn_limits.h"
#include "frontend_metrics.h"
#include "log.h"

#include <stdlib.h>
#include <string.h>

/* The password was right; max_connections_per_account has the last word. */
static void login_limited(struct session *s, bool ok)
{
    struct imap_session *is = (struct imap_session *)s;
    if (!ok) {
        free(is->s.user);
        is->s.user = NULL;
        is->s.account_id = 0;
        imap_done(is, "NO", "[LIMIT] Too many connections of this account from your address.");
        return;
    }
    is->state = IMAP_AUTH;
    cluster_session_login(&is->s, &imap_cluster_hooks);
    session_set_idle_timeout(&is->s, (double)frontend->cfg->imap_autologout);
    log_info("\"login\" session=%s user=%s", is->s.id, is->s.user);
    imap_done(is, "OK", "[CAPABILITY %s] Logged in.", imap_capabilities(is));
}

static void login_done(const Petrel__Response *resp, void *ctx)
{
    struct imap_session *is = ctx;
    if (resp->status == PETREL__STATUS__NO) {
        session_auth_result(&is->s, MA_FAILURE);
        auth_result(&is->s, NULL, false);
        imap_done(is, "NO", "[AUTHENTICATIONFAILED] Authentication failed.");
        return;
    }
    if (resp->status != PETREL__STATUS__OK || resp->result_case != PETREL__RESPONSE__RESULT_LOGIN) {
        session_auth_result(&is->s, MA_TEMPFAIL);
        imap_done(is, "NO", "[UNAVAILABLE] Temporary authentication failure, try again later.");
        return;
    }
    session_auth_result(&is->s, MA_SUCCESS);
    auth_result(&is->s, NULL, true);
    is->s.account_id = resp->login->account_id;
    is->s.user = strdup(resp->login->address);
    conn_limits_account(&is->s, login_limited);
}

void cmd_login(struct imap_session *is, const struct imap_command *cmd)
{
    char *user = cmd->arg_count == 2 ? imap_arg_strdup(&cmd->args[0]) : NULL;
    char *pass = cmd->arg_count == 2 ? imap_arg_strdup(&cmd->args[1]) : NULL;
    if (!user || !pass) {
        free(user);
        free(pass);
        imap_done(is, "BAD", "LOGIN expects a user name and a password.");
        return;
    }
    imap_login_start(is, user, pass);
    explicit_bzero(pass, strlen(pass));
    free(user);
    free(pass);
}

/* After the throttling delay (auth_policy.h). */
static void login_checked(struct session *s, enum auth_verdict v, const char *user, const char *pass)
{
    struct imap_session *is = (struct imap_session *)s;
    if (v == AUTH_LOCKED) {
        session_auth_result(&is->s, MA_TEMPFAIL);
        imap_done(is, "NO", "[UNAVAILABLE] Too many failed logins, try again later.");
        return;
    }
    Petrel__Request req = PETREL__REQUEST__INIT;
    Petrel__LoginReq lr = PETREL__LOGIN_REQ__INIT;
    lr.username = (char *)user;
    lr.password = (char *)(pass ? pass : "");
    lr.client_ip = is->s.client_ip;
    lr.protocol = "imap";
    req.op_case = PETREL__REQUEST__OP_LOGIN;
    req.login = &lr;
    session_request(&is->s, &req);
    rpc_call(&req, RPC_RETRYABLE, login_done, is, &is->s.calls);
}

/* Shared with AUTHENTICATE (cmd_authenticate.c): the cleartext policy, the
 * throttling, the same backend check and completion. */
void imap_login_start(struct imap_session *is, const char *user, const char *pass)
{
    if (!auth_allowed(&is->s)) {
        imap_done(is, "NO", "[PRIVACYREQUIRED] Plaintext authentication disallowed on non-secure "
                            "(SSL/TLS) connections.");
        return;
    }
    auth_throttle_check(&is->s, user, pass, login_checked);
}
