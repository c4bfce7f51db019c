/* resolve.h - name resolution on the event loop (c-ares), and a bounded blocking variant.
 *
 * A lookup belongs to one check and there is at most one in flight per check: an attempt that
 * starts while the previous lookup is still out waits for that same answer instead of queueing
 * another, so a resolver that never answers costs one pending query per check, not one per
 * probe. Answers are cached for their TTL, at most `max_cache_ms` (the check's interval). */
#ifndef HEALTHAGG_RESOLVE_H
#define HEALTHAGG_RESOLVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#define HA_ADDR_MAX 8

typedef struct ha_addr_list {
    struct sockaddr_storage addr[HA_ADDR_MAX];
    size_t n;
} ha_addr_list;

typedef struct ha_resolver ha_resolver;
typedef struct ha_lookup ha_lookup;
/* status 0: l->result holds the addresses; else err holds c-ares's sentence. */
typedef void (*ha_lookup_cb)(ha_lookup *l, int status, const char *err);

struct ha_lookup {
    ha_resolver *resolver;
    const char *host; /* not owned: the check config's */
    uint16_t port;
    uint64_t max_cache_ms;
    ha_lookup_cb cb; /* called when an answer arrives (also for a cached one: not called) */
    void *data;
    bool in_flight;
    ha_addr_list result;
    uint64_t expires_ms; /* loop time the cached result goes stale; 0: none */
};

/* One per loop. Returns NULL (with err) when c-ares can't start (e.g. unreadable resolv.conf
 * is not an error: c-ares falls back to defaults). */
ha_resolver *ha_resolver_new(uv_loop_t *loop, char *err, size_t errlen);
/* Cancels every lookup (their callbacks run with an error) and closes the handles; the memory
 * is released by the loop's close callbacks. */
void ha_resolver_close(ha_resolver *r);

void ha_lookup_init(ha_lookup *l, ha_resolver *r, const char *host, uint16_t port,
                    uint64_t max_cache_ms, ha_lookup_cb cb, void *data);
/* 1: a fresh cached answer is in l->result (no callback); 0: a lookup is in flight (started
 * now or earlier) and cb will run; -1: could not start (err set). */
int ha_lookup_start(ha_lookup *l, char *err, size_t errlen);

/* Fills `out` for an IP literal or "localhost" (127.0.0.1) without any resolver; false if
 * `host` is a name that needs one. */
bool ha_addr_literal(const char *host, bool ipv6, uint16_t port, ha_addr_list *out);
/* Blocking resolution for one-shot clients, bounded by `deadline_ms` (CLOCK_MONOTONIC ms).
 * Returns 0 or -1 with err ("timeout after 500ms" or c-ares's sentence). */
int ha_resolve_blocking(const char *host, uint16_t port, int64_t deadline_ms, ha_addr_list *out,
                        char *err, size_t errlen);
/* "127.0.0.1:8080" / "[::1]:8080" */
void ha_addr_format(const struct sockaddr_storage *a, char *buf, size_t len);

#endif
