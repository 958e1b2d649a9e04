/* SUBSCRIBE and UNSUBSCRIBE (RFC 9051 6.3.7, 6.3.8). The subscription list
 * is a list of names: a name need not be a mailbox (Dovecot allows it too),
 * and unsubscribing a name that is not subscribed is OK. */
#include "imap/imap_session.h"

#include <stdlib.h>
#include <strings.h>

static void subscribe_done(const Petrel__Response *resp, void *ctx)
{
    struct imap_session *is = ctx;
    bool un = strcasecmp(is->def->name, "UNSUBSCRIBE") == 0;
    if (resp->status == PETREL__STATUS__NO)
        imap_done(is, "NO", "Invalid mailbox name.");
    else if (resp->status != PETREL__STATUS__OK)
        imap_done_rpc(is, resp);
    else
        imap_done(is, "OK", "%s completed.", un ? "Unsubscribe" : "Subscribe");
}

void cmd_subscribe(struct imap_session *is, const struct imap_command *cmd)
{
    bool un = strcasecmp(is->def->name, "UNSUBSCRIBE") == 0;
    if (cmd->arg_count != 1) {
        imap_done(is, "BAD", "%s expects a mailbox name.", is->def->name);
        return;
    }
    char *name = imap_mailbox_name(is, &cmd->args[0]);
    if (!name || !*name) {
        free(name);
        imap_done(is, "NO", "Invalid mailbox name.");
        return;
    }
    Petrel__Request req = PETREL__REQUEST__INIT;
    Petrel__SubscribeReq sr = PETREL__SUBSCRIBE_REQ__INIT;
    sr.name = name;
    sr.unsubscribe = un;
    req.op_case = PETREL__REQUEST__OP_SUBSCRIBE;
    req.subscribe = &sr;
    session_request(&is->s, &req);
    rpc_call(&req, 0, subscribe_done, is, &is->s.calls);
    free(name);
}

void cmd_unsubscribe(struct imap_session *is, const struct imap_command *cmd)
{
    cmd_subscribe(is, cmd);
}
