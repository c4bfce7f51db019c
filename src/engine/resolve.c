/* resolve.c - name resolution with c-ares, on the libuv loop: no threads, nothing to starve.
 *
 * getaddrinfo on libuv's four-thread pool let a few hung lookups block every other check's
 * resolution (even names in /etc/hosts) and queue new ones without bound. c-ares instead runs
 * its queries on the loop: c-ares tells us which sockets it wants watched (sock_state_cb) and
 * we give each a uv_poll; one uv_timer drives its retransmits. It reads /etc/hosts and
 * /etc/resolv.conf itself (a FROM-scratch container has both: the runtime mounts them).
 * Queries can't be cancelled one by one, so a lookup outlives an attempt that timed out; the
 * cost is bounded by keeping at most one lookup in flight per check and by c-ares's own
 * timeout and tries (set below). Closing the resolver ends every query with
 * ARES_EDESTRUCTION, so nothing is left pending at shutdown. */
#include "healthagg/resolve.h"

#include <ares.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Per query try; c-ares doubles it on each retry. Bounded well below any sane interval. */
#define RESOLVE_TRY_MS 1000
#define RESOLVE_TRIES 2

typedef struct sock_watch {
    uv_poll_t poll;
    ha_resolver *r;
    ares_socket_t fd;
    struct sock_watch *next;
} sock_watch;

struct ha_resolver {
    uv_loop_t *loop;
    ares_channel channel;
    uv_timer_t timer;
    sock_watch *watches;
    size_t pending; /* queries in flight: the timer runs only while there are some */
    bool closing;
};

static void on_timer_closed(uv_handle_t *h)
{
    free(h->data);
}

static void on_poll_closed(uv_handle_t *h)
{
    free(h->data);
}

static void on_timer(uv_timer_t *t);

static void rearm_timer(ha_resolver *r)
{
    if (r->closing)
        return;
    if (r->pending == 0) {
        uv_timer_stop(&r->timer);
        return;
    }
    struct timeval max = {.tv_sec = 5, .tv_usec = 0}, tv;
    struct timeval *t = ares_timeout(r->channel, &max, &tv);
    uint64_t ms = (uint64_t)t->tv_sec * 1000 + (uint64_t)t->tv_usec / 1000;
    uv_timer_start(&r->timer, on_timer, ms ? ms : 1, 0);
}

static void on_timer(uv_timer_t *t)
{
    ha_resolver *r = t->data;
    ares_process_fd(r->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    rearm_timer(r);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    sock_watch *w = h->data;
    ha_resolver *r = w->r;
    ares_socket_t fd = w->fd;
    /* On a poll error let c-ares read and write: it sees the socket error and moves on. */
    ares_socket_t rfd = (status < 0 || (events & UV_READABLE)) ? fd : ARES_SOCKET_BAD;
    ares_socket_t wfd = (status < 0 || (events & UV_WRITABLE)) ? fd : ARES_SOCKET_BAD;
    ares_process_fd(r->channel, rfd, wfd); /* may free w through sock_state_cb */
    rearm_timer(r);
}

static void on_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
    ha_resolver *r = data;
    sock_watch **pp = &r->watches;
    while (*pp && (*pp)->fd != fd)
        pp = &(*pp)->next;
    sock_watch *w = *pp;
    if (!readable && !writable) {
        if (w) {
            *pp = w->next;
            uv_close((uv_handle_t *)&w->poll, on_poll_closed);
        }
        return;
    }
    if (!w) {
        w = calloc(1, sizeof(*w));
        if (!w)
            return; /* the query times out through the timer instead */
        if (uv_poll_init_socket(r->loop, &w->poll, fd) != 0) {
            free(w);
            return;
        }
        w->poll.data = w;
        w->r = r;
        w->fd = fd;
        w->next = r->watches;
        r->watches = w;
    }
    int events = (readable ? UV_READABLE : 0) | (writable ? UV_WRITABLE : 0);
    uv_poll_start(&w->poll, events, on_poll);
}

ha_resolver *ha_resolver_new(uv_loop_t *loop, char *err, size_t errlen)
{
    int rc = ares_library_init(ARES_LIB_INIT_ALL);
    if (rc != ARES_SUCCESS) {
        snprintf(err, errlen, "resolver: %s", ares_strerror(rc));
        return NULL;
    }
    ha_resolver *r = calloc(1, sizeof(*r));
    if (!r) {
        snprintf(err, errlen, "resolver: out of memory");
        return NULL;
    }
    r->loop = loop;
    struct ares_options o;
    memset(&o, 0, sizeof(o));
    o.sock_state_cb = on_sock_state;
    o.sock_state_cb_data = r;
    o.timeout = RESOLVE_TRY_MS;
    o.tries = RESOLVE_TRIES;
    rc = ares_init_options(&r->channel, &o,
                           ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES);
    if (rc != ARES_SUCCESS) {
        snprintf(err, errlen, "resolver: %s", ares_strerror(rc));
        free(r);
        return NULL;
    }
    if ((rc = uv_timer_init(loop, &r->timer)) != 0) {
        snprintf(err, errlen, "resolver: %s", uv_strerror(rc));
        ares_destroy(r->channel);
        free(r);
        return NULL;
    }
    r->timer.data = r;
    return r;
}

void ha_resolver_close(ha_resolver *r)
{
    if (!r)
        return;
    ares_destroy(r->channel); /* runs pending callbacks with ARES_EDESTRUCTION */
    r->closing = true;
    while (r->watches) {
        sock_watch *w = r->watches;
        r->watches = w->next;
        uv_close((uv_handle_t *)&w->poll, on_poll_closed);
    }
    uv_close((uv_handle_t *)&r->timer, on_timer_closed);
}

void ha_lookup_init(ha_lookup *l, ha_resolver *r, const char *host, uint16_t port,
                    uint64_t max_cache_ms, ha_lookup_cb cb, void *data)
{
    memset(l, 0, sizeof(*l));
    l->resolver = r;
    l->host = host;
    l->port = port;
    l->max_cache_ms = max_cache_ms;
    l->cb = cb;
    l->data = data;
}

/* Copies up to HA_ADDR_MAX stream-capable addresses, in c-ares's order; returns the smallest
 * TTL seen (seconds). */
static int collect(const struct ares_addrinfo *ai, uint16_t port, ha_addr_list *out)
{
    int ttl = -1;
    out->n = 0;
    for (const struct ares_addrinfo_node *n = ai ? ai->nodes : NULL; n && out->n < HA_ADDR_MAX;
         n = n->ai_next) {
        if (n->ai_family != AF_INET && n->ai_family != AF_INET6)
            continue;
        if (n->ai_addrlen > (ares_socklen_t)sizeof(struct sockaddr_storage))
            continue;
        bool dup = false;
        for (size_t i = 0; i < out->n; i++)
            if (memcmp(&out->addr[i], n->ai_addr, n->ai_addrlen) == 0)
                dup = true;
        if (dup)
            continue;
        struct sockaddr_storage *ss = &out->addr[out->n++];
        memset(ss, 0, sizeof(*ss));
        memcpy(ss, n->ai_addr, n->ai_addrlen);
        if (n->ai_family == AF_INET)
            ((struct sockaddr_in *)ss)->sin_port = htons(port);
        else
            ((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
        if (ttl < 0 || n->ai_ttl < ttl)
            ttl = n->ai_ttl;
    }
    return ttl < 0 ? 0 : ttl;
}

static void on_addrinfo(void *arg, int status, int timeouts, struct ares_addrinfo *res)
{
    ha_lookup *l = arg;
    (void)timeouts;
    l->in_flight = false;
    l->resolver->pending--;
    char err[128] = "";
    int rc = 0;
    if (status == ARES_SUCCESS) {
        int ttl = collect(res, l->port, &l->result);
        if (l->result.n == 0) {
            rc = -1;
            snprintf(err, sizeof(err), "no IPv4 or IPv6 address");
        } else {
            uint64_t keep = (uint64_t)ttl * 1000;
            if (keep > l->max_cache_ms)
                keep = l->max_cache_ms;
            l->expires_ms = keep ? uv_now(l->resolver->loop) + keep : 0;
        }
    } else {
        rc = -1;
        l->result.n = 0;
        l->expires_ms = 0;
        snprintf(err, sizeof(err), "%s", ares_strerror(status));
    }
    if (res)
        ares_freeaddrinfo(res);
    if (status != ARES_EDESTRUCTION && !l->resolver->closing)
        l->cb(l, rc, err);
}

int ha_lookup_start(ha_lookup *l, char *err, size_t errlen)
{
    if (l->in_flight)
        return 0;
    if (l->expires_ms && uv_now(l->resolver->loop) < l->expires_ms && l->result.n)
        return 1;
    if (!l->resolver) {
        snprintf(err, errlen, "no resolver");
        return -1;
    }
    struct ares_addrinfo_hints hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = ARES_AI_NOSORT; /* keep the order the records came in, as curl does */
    l->in_flight = true;
    l->resolver->pending++;
    ares_getaddrinfo(l->resolver->channel, l->host, NULL, &hints, on_addrinfo, l);
    if (l->in_flight)
        rearm_timer(l->resolver);
    return 0;
}

bool ha_addr_literal(const char *host, bool ipv6, uint16_t port, ha_addr_list *out)
{
    memset(out, 0, sizeof(*out));
    if (strcmp(host, "localhost") == 0)
        host = "127.0.0.1";
    if (ipv6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&out->addr[0];
        if (uv_ip6_addr(host, port, a) != 0)
            return false;
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&out->addr[0];
        struct in_addr tmp;
        if (inet_pton(AF_INET, host, &tmp) != 1 || uv_ip4_addr(host, port, a) != 0)
            return false;
    }
    out->n = 1;
    return true;
}

void ha_addr_format(const struct sockaddr_storage *a, char *buf, size_t len)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    if (a->ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)a;
        inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
        snprintf(buf, len, "[%s]:%u", ip, (unsigned)ntohs(s6->sin6_port));
    } else {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)a;
        inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
        snprintf(buf, len, "%s:%u", ip, (unsigned)ntohs(s4->sin_port));
    }
}

/* Blocking variant: one private channel, polled until the answer or the deadline. */
typedef struct blocking_answer {
    bool done;
    int status;
    ha_addr_list *out;
    uint16_t port;
} blocking_answer;

static void on_blocking(void *arg, int status, int timeouts, struct ares_addrinfo *res)
{
    blocking_answer *a = arg;
    (void)timeouts;
    a->done = true;
    a->status = status;
    if (status == ARES_SUCCESS)
        collect(res, a->port, a->out);
    if (res)
        ares_freeaddrinfo(res);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int ha_resolve_blocking(const char *host, uint16_t port, int64_t deadline_ms, ha_addr_list *out,
                        char *err, size_t errlen)
{
    int64_t start = mono_ms();
    int rc = ares_library_init(ARES_LIB_INIT_ALL);
    ares_channel ch;
    struct ares_options o;
    memset(&o, 0, sizeof(o));
    o.timeout = RESOLVE_TRY_MS;
    o.tries = RESOLVE_TRIES;
    if (rc != ARES_SUCCESS ||
        (rc = ares_init_options(&ch, &o, ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES)) != ARES_SUCCESS) {
        snprintf(err, errlen, "%s", ares_strerror(rc));
        return -1;
    }
    blocking_answer a = {.out = out, .port = port};
    out->n = 0;
    struct ares_addrinfo_hints hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = ARES_AI_NOSORT;
    ares_getaddrinfo(ch, host, NULL, &hints, on_blocking, &a);
    while (!a.done) {
        int64_t left = deadline_ms - mono_ms();
        if (left <= 0)
            break;
        ares_socket_t socks[ARES_GETSOCK_MAXNUM];
        /* The bit tests by hand: c-ares's ARES_GETSOCK_WRITABLE shifts a signed 1 into the
         * sign bit for the last socket, which is undefined behaviour. */
        unsigned bits = (unsigned)ares_getsock(ch, socks, ARES_GETSOCK_MAXNUM);
        struct pollfd pfd[ARES_GETSOCK_MAXNUM];
        nfds_t n = 0;
        for (unsigned i = 0; i < ARES_GETSOCK_MAXNUM; i++) {
            short ev = (short)((((bits >> i) & 1u) ? POLLIN : 0) |
                               (((bits >> (i + ARES_GETSOCK_MAXNUM)) & 1u) ? POLLOUT : 0));
            if (!ev)
                continue;
            pfd[n].fd = socks[i];
            pfd[n].events = ev;
            pfd[n].revents = 0;
            n++;
        }
        struct timeval max = {.tv_sec = left / 1000, .tv_usec = (left % 1000) * 1000}, tv;
        struct timeval *t = ares_timeout(ch, &max, &tv);
        int wait = (int)(t->tv_sec * 1000 + t->tv_usec / 1000);
        if (poll(pfd, n, wait ? wait : 1) < 0)
            continue;
        bool any = false;
        for (nfds_t i = 0; i < n; i++) {
            if (!pfd[i].revents)
                continue;
            any = true;
            ares_process_fd(
                ch, (pfd[i].revents & (POLLIN | POLLERR | POLLHUP)) ? pfd[i].fd : ARES_SOCKET_BAD,
                (pfd[i].revents & POLLOUT) ? pfd[i].fd : ARES_SOCKET_BAD);
        }
        if (!any)
            ares_process_fd(ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    }
    bool done = a.done;
    ares_destroy(ch); /* a pending query ends here with ARES_EDESTRUCTION */
    if (!done) {
        snprintf(err, errlen, "timeout after %lldms", (long long)(mono_ms() - start));
        return -1;
    }
    if (a.status != ARES_SUCCESS) {
        snprintf(err, errlen, "%s", ares_strerror(a.status));
        return -1;
    }
    if (out->n == 0) {
        snprintf(err, errlen, "no IPv4 or IPv6 address");
        return -1;
    }
    return 0;
}
