/* LIST (RFC 9051 6.3.9), basic form: reference and pattern with * and %. */
#include "imap/imap_session.h"

#include "imap/imap_write.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct list_state {
    char *pattern;   /* reference + mailbox pattern */
};

static void list_state_free(void *p)
{
    struct list_state *st = p;
    free(st->pattern);
    free(st);
}

/* '*' matches anything, '%' anything but the hierarchy separator. INBOX is
 * case-insensitive. */
static bool match(const char *pat, const char *name)
{
    for (; *pat; pat++, name++) {
        if (*pat == '*' || *pat == '%') {
            for (const char *n = name;; n++) {
                if (match(pat + 1, n))
                    return true;
                if (!*n || (*pat == '%' && *n == '/'))
                    return false;
            }
        }
        if (*pat != *name)
            return false;
    }
    return *name == '\0';
}

static bool name_matches(const char *pattern, const char *name)
{
    if (strcasecmp(name, "INBOX") == 0 && strncasecmp(pattern, "INBOX", 5) == 0) {
        char p[6];
        memcpy(p, pattern, 5);
        p[5] = '\0';
        if (strcasecmp(p, "INBOX") == 0 && match(pattern + 5, name + 5))
            return true;
    }
    return match(pattern, name);
}

static void list_done(const Petrel__Response *resp, void *ctx)
{
    struct imap_session *is = ctx;
    struct list_state *st = is->cmd_state;
    if (resp->status != PETREL__STATUS__OK || resp->result_case != PETREL__RESPONSE__RESULT_LIST) {
        imap_done_rpc(is, resp);
        return;
    }
    struct buf *out = imap_out(is);
    for (size_t i = 0; i < resp->list->n_mailboxes; i++) {
        const Petrel__MailboxInfo *m = resp->list->mailboxes[i];
        if (!name_matches(st->pattern, m->name))
            continue;
        buf_printf(out, "* LIST (%s", m->has_children ? "\\HasChildren" : "\\HasNoChildren");
        if (m->special_use && *m->special_use)
            buf_printf(out, " %s", m->special_use);
        buf_puts(out, ") \"/\" ");
        imap_write_mailbox(out, m->name);
        buf_puts(out, "\r\n");
    }
    imap_flush(is);
    imap_done(is, "OK", "List completed.");
}

void cmd_list(struct imap_session *is, const struct imap_command *cmd)
{
    /* Reference and pattern are modified UTF-7 too; wildcards are ASCII. */
    char *ref = cmd->arg_count == 2 ? imap_mailbox_name(&cmd->args[0]) : NULL;
    char *pat = cmd->arg_count == 2 ? imap_mailbox_name(&cmd->args[1]) : NULL;
    if (!ref || !pat) {
        free(ref);
        free(pat);
        imap_done(is, "BAD", "LIST expects a reference and a mailbox pattern.");
        return;
    }
    if (*pat == '\0') {   /* the hierarchy delimiter and root (RFC 9051 6.3.9) */
        free(ref);
        free(pat);
        imap_untagged(is, "LIST (\\Noselect) \"/\" \"\"");
        imap_done(is, "OK", "List completed.");
        return;
    }
    struct list_state *st = calloc(1, sizeof *st);
    size_t rl = strlen(ref), pl = strlen(pat);
    st->pattern = malloc(rl + pl + 1);
    memcpy(st->pattern, ref, rl);
    memcpy(st->pattern + rl, pat, pl + 1);
    free(ref);
    free(pat);
    is->cmd_state = st;
    is->cmd_free = list_state_free;
    Petrel__Request req = PETREL__REQUEST__INIT;
    Petrel__ListReq lr = PETREL__LIST_REQ__INIT;
    req.op_case = PETREL__REQUEST__OP_LIST;
    req.list = &lr;
    session_request(&is->s, &req);
    rpc_call(&req, RPC_RETRYABLE, list_done, is, &is->s.calls);
}
