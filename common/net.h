/* Sockets: address parsing, listeners and outgoing connections, all non-blocking. */
#ifndef PETREL_NET_H
#define PETREL_NET_H

#include <sys/socket.h>

/* Parses "host:port" or "[v6]:port" into storage; 0 or -1. */
int net_parse_addr(const char *spec, struct sockaddr_storage *ss, socklen_t *len_r);
/* A non-blocking listening socket with SO_REUSEPORT, so every worker binds its
 * own and the kernel spreads connections between them. -1 with errno on error. */
int net_listen(const char *spec, int backlog);
/* Accepts one connection from a listener: non-blocking, close-on-exec, and
 * with Nagle's algorithm off, since every protocol here answers small
 * requests and a delayed ACK would hold each answer ~40 ms. -1 with errno. */
int net_accept(int listen_fd);
/* Starts a non-blocking connect; the caller waits for writability. */
int net_connect(const char *spec);
/* Formats the peer address of fd as "ip" into out. */
void net_peer_ip(int fd, char *out, size_t outlen);
int net_set_nonblock(int fd);

#endif
