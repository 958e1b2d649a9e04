/* Change notifications over Redis PUBLISH (see notify.h). */
#include "notify.h"

#include "log.h"
#include "redis_link.h"

#include <inttypes.h>
#include <stdio.h>

static struct redis_link notify_link;
static bool started;
static unsigned long long dropped;

int notify_start(struct ev_loop *loop, const char *url, const char *node, int worker)
{
    if (!url || !*url) {
        log_info("\"change notifications off (no redis_url)\"");
        return 0;
    }
    snprintf(notify_link.client_name, sizeof notify_link.client_name, "petrel-backend-%s-%d-notify",
             node, worker);
    if (redis_link_start(&notify_link, loop, url, "notify") < 0)
        return -1;
    started = true;
    return 0;
}

void notify_stop(void)
{
    if (started)
        redis_link_stop(&notify_link);
    started = false;
}

void notify_change(int64_t account_id, int64_t mailbox_id, uint64_t modseq, const char *session)
{
    if (!started || account_id <= 0)
        return;
    char channel[48], payload[160];
    snprintf(channel, sizeof channel, "petrel:account:%" PRId64, account_id);
    snprintf(payload, sizeof payload, "%" PRId64 " %" PRIu64 " %s", mailbox_id, modseq,
             session && *session ? session : "-");
    if (redis_link_command(&notify_link, NULL, NULL, "PUBLISH %s %s", channel, payload) < 0) {
        /* Frontends poll while they cannot hear from us. */
        if (dropped++ % 1000 == 0)
            log_debug("\"change notification not sent: redis down\" account=%" PRId64, account_id);
    }
}
