/* CREATE (RFC 9051 6.3.4). */
#include "imap/imap_session.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void create_done(const Petrel__Response *resp, void *ctx)
{
    struct imap_session *is = ctx;
    struct imap_named *st = is->cmd_state;
    if (resp->status == PETREL__STATUS__NO) {
        imap_done(is, "NO", "[CANNOT] Invalid mailbox name.");
        return;
    }
    if (resp->status != PETREL__STATUS__OK) {
        imap_done_rpc(is, resp);
        return;
    }
    imap_write_oldname(is, "", st->name, st->sent);   /* RFC 9051 6.3.4 */
    if (resp->result_case == PETREL__RESPONSE__RESULT_CREATE && *resp->create->objectid)
        imap_done(is, "OK", "[MAILBOXID (%s)] Create completed.", resp->create->objectid);   /* RFC 8474 4.1 */
    else
        imap_done(is, "OK", "Create completed.");   /* a backend of the previous release */
}

/* Drops the trailing separator, which only declares intent (RFC 9051 6.3.4). */
static size_t strip_separator(char *name)
{
    size_t len = strlen(name);
    if (len && name[len - 1] == '/')
        name[--len] = '\0';
    return len;
}

/* CREATE-SPECIAL-USE (RFC 6154 3): the create parameters (USE (\Sent)).
 * Returns 0 with *use (a static string, "" for none), -1 for a parameter
 * list that is not understood (BAD), -2 for an attribute we cannot give
 * (NO [USEATTR]; one special use per mailbox here). */
static int parse_use(const struct imap_arg *params, const char **use)
{
    static const char *const attrs[] = { "\\All", "\\Archive", "\\Drafts", "\\Flagged",
                                         "\\Important", "\\Junk", "\\Sent", "\\Trash" };
    *use = "";
    if (params->type != IMAP_ARG_LIST || params->count % 2 != 0)
        return -1;
    for (size_t i = 0; i < params->count; i += 2) {
        const struct imap_arg *v = &params->list[i + 1];
        if (!imap_arg_atom_is(&params->list[i], "USE") || v->type != IMAP_ARG_LIST)
            return -1;
        for (size_t k = 0; k < v->count; k++) {
            const char *found = NULL;
            for (size_t j = 0; j < sizeof attrs / sizeof attrs[0]; j++)
                if (imap_arg_atom_is(&v->list[k], attrs[j]))
                    found = attrs[j];
            if (!found || (**use && strcmp(*use, found) != 0))
                return -2;
            *use = found;
        }
    }
    return 0;
}

void cmd_create(struct imap_session *is, const struct imap_command *cmd)
{
    const char *use = "";
    if (cmd->arg_count < 1 || cmd->arg_count > 2 ||
        (cmd->arg_count == 2 && parse_use(&cmd->args[1], &use) == -1)) {
        imap_done(is, "BAD", "CREATE expects a mailbox name and optional (USE (...)).");
        return;
    }
    if (cmd->arg_count == 2 && parse_use(&cmd->args[1], &use) == -2) {
        imap_done(is, "NO", "[USEATTR] Unsupported special-use attribute.");
        return;
    }
    char *sent;
    char *name = imap_mailbox_name_sent(is, &cmd->args[0], &sent);
    size_t len = name ? strip_separator(name) : 0;
    if (!name || len == 0 || strcasecmp(name, "INBOX") == 0 || strstr(name, "//") ||
        name[0] == '/') {
        free(name);
        free(sent);
        imap_done(is, "NO", "[CANNOT] Invalid mailbox name.");
        return;
    }
    if (sent)
        strip_separator(sent);
    imap_named_state(is, name, sent);
    Petrel__Request req = PETREL__REQUEST__INIT;
    Petrel__CreateReq cr = PETREL__CREATE_REQ__INIT;
    cr.name = name;
    cr.special_use = (char *)use;
    req.op_case = PETREL__REQUEST__OP_CREATE;
    req.create = &cr;
    session_request(&is->s, &req);
    rpc_call(&req, 0, create_done, is, &is->s.calls);
}
