#include "header_end.h"

#include <string.h>

void header_end_init(struct header_end *h)
{
    h->seen = 0;
    h->size = 0;
    /* as if a line had just ended, so an empty first line ends the header */
    memcpy(h->tail, "\0\0\r\n", 4);
}

uint64_t header_end_feed(struct header_end *h, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n && h->size == 0; i++) {
        memmove(h->tail, h->tail + 1, 3);
        h->tail[3] = (char)p[i];
        if (memcmp(h->tail + 2, "\n\n", 2) == 0 || memcmp(h->tail, "\r\n\r\n", 4) == 0)
            h->size = h->seen + i + 1;
    }
    h->seen += n;
    return h->size;
}
