/* LIST and LSUB share one implementation (cmd_list.c). */
#ifndef PETREL_IMAP_LIST_H
#define PETREL_IMAP_LIST_H

#include "imap/imap_session.h"

/* Runs the command LIST (lsub false) or LSUB (lsub true). */
void imap_list_run(struct imap_session *is, const struct imap_command *cmd, bool lsub);

#endif
