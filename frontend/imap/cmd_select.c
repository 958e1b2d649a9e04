/* SELECT and EXAMINE (RFC 9051 6.3.2, 6.3.3; RFC 3501 for IMAP4rev1 clients:
 * those get "* 0 RECENT" and OK [UNSEEN n], an IMAP4rev2 session a LIST),
 * with the RFC 7162 parameters (CONDSTORE) and (QRESYNC (uidvalidity modseq
 * [known-uids [seq-match-data]])). seq-match-data is accepted and not
 * needed: the backend knows every expunge since the client's modseq, or
 * (tombstones pruned) the frontend compares against the UID list. */
#include "imap/imap_session.h"

#include "cluster_state.h"
#include "imap/imap_condstore.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct select_state {
    char *name;
    char *sent;                /* the name as sent, when NFC changed it */
    bool qresync;              /* a QRESYNC parameter came */
    uint32_t qr_uidvalidity;
    uint64_t qr_modseq;
    char *known;               /* known-uids as sent, or NULL */
    size_t known_len;
};

static void select_state_free(void *p)
{
    struct select_state *st = p;
    free(st->name);
    free(st->sent);
    free(st->known);
    free(st);
}

static void select_finish(struct imap_session *is)
{
    bool read_only = is->sel.read_only;
    imap_done(is, "OK", "[%s] %s completed.", read_only ? "READ-ONLY" : "READ-WRITE",
              read_only ? "Examine" : "Select");
}

/* RFC 3501's RECENT and UNSEEN, which RFC 9051 drops (Appendix E). */
static void write_rev1_counts(struct imap_session *is, const Petrel__SelectResp *sr)
{
    imap_untagged(is, "0 RECENT");
    uint32_t seq = sr->first_unseen_uid ? imap_seq_of_uid(&is->sel, sr->first_unseen_uid) : 0;
    if (seq)
        imap_untagged(is, "OK [UNSEEN %u] First unseen.", seq);
}

/* RFC 9051 6.3.2 requires an untagged LIST of the mailbox, which gives
 * the client its canonical name, with OLDNAME when that is not the name
 * it sent (NFC, imap_mailbox_name_sent). The attributes are left empty, as
 * in the RFC's own example: what the backend tells a SELECT holds none of
 * them, and an empty list claims nothing false. */
static void write_list(struct imap_session *is, const char *sent)
{
    if (sent) {
        imap_write_oldname(is, "", is->sel.name, sent);
        return;
    }
    struct buf *out = imap_out(is);
    buf_puts(out, "* LIST () \"/\" ");
    imap_write_mailbox(is, out, is->sel.name);
    buf_puts(out, "\r\n");
}

static void select_done(const Petrel__Response *resp, void *ctx)
{
    struct imap_session *is = ctx;
    struct select_state *st = is->cmd_state;
    is->cmd_state = NULL;
    char *name = st->name;
    st->name = NULL;
    if (resp->status != PETREL__STATUS__OK || resp->result_case != PETREL__RESPONSE__RESULT_SELECT) {
        free(name);
        select_state_free(st);
        imap_done_rpc(is, resp);
        return;
    }
    const Petrel__SelectResp *sr = resp->select;
    bool read_only = strcasecmp(is->def->name, "EXAMINE") == 0;
    struct imap_selected *sel = &is->sel;
    sel->mailbox_id = sr->mailbox_id;
    sel->name = name;
    sel->uidvalidity = sr->uidvalidity;
    sel->uidnext = sr->uidnext;
    sel->highestmodseq = sr->highestmodseq;
    sel->read_only = read_only;
    imap_sel_set_uids(sel, sr->uids, sr->n_uids);
    is->state = IMAP_SELECTED;
    cluster_session_mailbox(&is->s, name);
    imap_untagged(is, "FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)");
    imap_untagged(is, "OK [PERMANENTFLAGS (%s)] %s",
                  read_only ? "" : "\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*",
                  read_only ? "Read-only mailbox." : "Flags permitted.");
    imap_untagged(is, "%u EXISTS", sel->count);
    if (is->imap4rev2)
        write_list(is, st->sent);
    else
        write_rev1_counts(is, sr);
    imap_untagged(is, "OK [UIDVALIDITY %u] UIDs valid", sel->uidvalidity);
    imap_untagged(is, "OK [UIDNEXT %u] Predicted next UID", sel->uidnext);
    imap_untagged(is, "OK [HIGHESTMODSEQ %llu] Highest", (unsigned long long)sel->highestmodseq);
    /* RFC 8474 4.1; a backend of the previous release sends none. */
    if (sr->objectid && *sr->objectid)
        imap_untagged(is, "OK [MAILBOXID (%s)] Ok", sr->objectid);
    /* QRESYNC with the UIDVALIDITY the client knows: what changed since its
     * modseq; another UIDVALIDITY means a full resync (RFC 7162 3.2.5). */
    if (st->qresync && st->qr_uidvalidity == sel->uidvalidity) {
        char *known = st->known;
        size_t known_len = st->known_len;
        uint64_t modseq = st->qr_modseq;
        st->known = NULL;
        select_state_free(st);
        imap_qresync_select(is, modseq, known, known_len, select_finish);
        free(known);
        return;
    }
    select_state_free(st);
    select_finish(is);
}

/* Parses the SELECT parameter list; false (and a BAD sent) on error. */
static bool parse_params(struct imap_session *is, const struct imap_arg *list,
                         struct select_state *st)
{
    for (size_t i = 0; i < list->count; i++) {
        const struct imap_arg *a = &list->list[i];
        if (imap_arg_atom_is(a, "CONDSTORE")) {
            is->condstore = true;   /* SELECT reports HIGHESTMODSEQ itself */
            continue;
        }
        if (!imap_arg_atom_is(a, "QRESYNC") || i + 1 >= list->count ||
            list->list[i + 1].type != IMAP_ARG_LIST || st->qresync) {
            imap_done(is, "BAD", "Unknown or invalid %s parameter.", is->def->name);
            return false;
        }
        if (!is->qresync) {
            imap_done(is, "BAD", "QRESYNC is not enabled.");
            return false;
        }
        const struct imap_arg *q = &list->list[++i];
        uint64_t uv;
        struct imap_seqset set = {0};
        const char *err = NULL;
        if (q->count < 2 || q->count > 4 || !imap_parse_modseq(&q->list[0], false, &uv) ||
            uv > UINT32_MAX || !imap_parse_modseq(&q->list[1], false, &st->qr_modseq) ||
            (q->count >= 3 && (q->list[2].type != IMAP_ARG_ATOM ||
                               imap_seqset_parse(q->list[2].data, q->list[2].len, IMAP_SEQSET_UID,
                                                 UINT32_MAX, (size_t)frontend->cfg->imap_max_set_ranges,
                                                 &set, &err) < 0)) ||
            (q->count == 4 && (q->list[3].type != IMAP_ARG_LIST || q->list[3].count != 2 ||
                               q->list[3].list[0].type != IMAP_ARG_ATOM ||
                               q->list[3].list[1].type != IMAP_ARG_ATOM))) {
            imap_seqset_free(&set);
            if (err == imap_seqset_too_many)
                imap_done_set_error(is, is->def->name, err);
            else
                imap_done(is, "BAD", "Invalid QRESYNC parameter.");
            return false;
        }
        if (q->count >= 3) {
            bool searchres = set.searchres;
            imap_seqset_free(&set);
            if (searchres) {
                imap_done(is, "BAD", "Invalid QRESYNC parameter.");
                return false;
            }
            st->known = strndup(q->list[2].data, q->list[2].len);
            st->known_len = q->list[2].len;
        }
        st->qresync = true;
        st->qr_uidvalidity = (uint32_t)uv;
    }
    return true;
}

void cmd_select(struct imap_session *is, const struct imap_command *cmd)
{
    if ((cmd->arg_count != 1 && cmd->arg_count != 2) ||
        (cmd->arg_count == 2 && cmd->args[1].type != IMAP_ARG_LIST)) {
        imap_done(is, "BAD", "%s expects a mailbox name.", is->def->name);
        return;
    }
    struct select_state *st = calloc(1, sizeof *st);
    if (!st)
        abort();
    if (cmd->arg_count == 2 && !parse_params(is, &cmd->args[1], st)) {
        select_state_free(st);
        return;
    }
    char *name = imap_mailbox_name_sent(is, &cmd->args[0], &st->sent);
    /* Selecting deselects first, even when the new SELECT fails (RFC 9051). */
    if (is->state == IMAP_SELECTED) {
        imap_sel_clear(&is->sel);
        is->state = IMAP_AUTH;
        cluster_session_mailbox(&is->s, NULL);
        imap_untagged(is, "OK [CLOSED] Previous mailbox closed.");
    }
    if (!name) {
        select_state_free(st);
        imap_done(is, "NO", "Mailbox doesn't exist (invalid name).");
        return;
    }
    st->name = name;
    is->cmd_state = st;
    is->cmd_free = select_state_free;
    is->changed = false;   /* the SELECT sees all before it; later news sets it again */
    Petrel__Request req = PETREL__REQUEST__INIT;
    Petrel__SelectReq sr = PETREL__SELECT_REQ__INIT;
    sr.mailbox = name;
    sr.read_only = strcasecmp(is->def->name, "EXAMINE") == 0;
    req.op_case = PETREL__REQUEST__OP_SELECT;
    req.select = &sr;
    session_request(&is->s, &req);
    rpc_call(&req, RPC_RETRYABLE, select_done, is, &is->s.calls);
}

void cmd_examine(struct imap_session *is, const struct imap_command *cmd) { cmd_select(is, cmd); }
