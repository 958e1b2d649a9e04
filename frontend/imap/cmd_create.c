/* CREATE (RFC 9051 6.3.4). */
#include "imap/imap_session.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void create_done(const Petrel__Response *resp, void *ctx)
{
    struct imap_session *is = ctx;
    if (resp->status == PETREL__STATUS__NO)
        imap_done(is, "NO", "[CANNOT] Invalid mailbox name.");
    else if (resp->status != PETREL__STATUS__OK)
        imap_done_rpc(is, resp);
    else
        imap_done(is, "OK", "Create completed.");
}

void cmd_create(struct imap_session *is, const struct imap_command *cmd)
{
    if (cmd->arg_count != 1) {
        imap_done(is, "BAD", "CREATE expects a mailbox name.");
        return;
    }
    char *name = imap_mailbox_name(&cmd->args[0]);
    if (!name || !*name) {
        free(name);
        imap_done(is, "NO", "[CANNOT] Invalid mailbox name.");
        return;
    }
    size_t len = strlen(name);
    if (name[len - 1] == '/')   /* a trailing separator only declares intent */
        name[--len] = '\0';
    if (strcasecmp(name, "INBOX") == 0 || len == 0 || strstr(name, "//") || name[0] == '/') {
        free(name);
        imap_done(is, "NO", "[CANNOT] Invalid mailbox name.");
        return;
    }
    Petrel__Request req = PETREL__REQUEST__INIT;
    Petrel__CreateReq cr = PETREL__CREATE_REQ__INIT;
    cr.name = name;
    cr.special_use = "";
    req.op_case = PETREL__REQUEST__OP_CREATE;
    req.create = &cr;
    session_request(&is->s, &req);
    rpc_call(&req, 0, create_done, is, &is->s.calls);
    free(name);
}
