/* server.h - the health endpoint: a libuv TCP listener, llhttp request parsing, routing to
 * cached responses. GET and HEAD only; bounded connections, header bytes, request time. */
#ifndef HEALTHAGG_SERVER_H
#define HEALTHAGG_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct ha_context;
typedef struct ha_conn ha_conn;

typedef struct ha_server {
    struct ha_context *ctx;
    uv_tcp_t listener;
    bool listening;
    uv_timer_t sweep; /* enforces request and idle timeouts */
    ha_conn *active;  /* doubly linked list of open connections */
    ha_conn *free_list;
    unsigned n_active;
    unsigned n_free;
    uint64_t rejected;  /* connections closed at once: over max_connections */
    bool guard_details; /* listening beyond loopback without server.public_details */
    char bound[80];     /* the address actually bound, "127.0.0.1:8099" */
} ha_server;

/* Binds and listens; on failure `err` names the listen field and the fix. */
int ha_server_start(ha_server *s, struct ha_context *ctx, char *err, size_t errlen);
/* Serves an already connected stream socket as if it had been accepted; the server owns it
 * from then on. Used by the request-path fuzz target (over a socketpair). */
int ha_server_adopt(ha_server *s, uv_os_sock_t sock);
/* Stops accepting and closes every connection (asynchronously, via the loop). */
void ha_server_stop(ha_server *s);
/* Frees pooled connection memory once the loop has finished closing. */
void ha_server_free(ha_server *s);

#endif
