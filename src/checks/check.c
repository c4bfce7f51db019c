/* check.c - the shared half of every check: resolve, connect, deadline, verdict, teardown.
 *
 * One attempt is: [resolve] -> connect -> (check type takes over) -> ha_probe_finish().
 * ha_probe_finish() is the single exit: it stops the deadline, closes the socket and reports
 * once. Late callbacks (a connect or read completing after the deadline fired) see
 * `running == false` and do nothing. Name resolution runs on libuv's thread pool and can't be
 * interrupted, so its request is heap-allocated and carries the attempt's generation: an
 * answer for an attempt that already timed out is dropped. IP literals and "localhost" skip
 * the resolver entirely - in an awsvpc task almost every target is 127.0.0.1. */
#include "healthagg/check.h"
#include "healthagg/quote.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct resolve_req {
    uv_getaddrinfo_t req;
    ha_probe *probe; /* NULL once the probe gave up on this answer */
    unsigned generation;
} resolve_req;

static const char *phase_name(ha_probe_phase ph)
{
    switch (ph) {
    case HA_PHASE_RESOLVING:
        return "resolving host";
    case HA_PHASE_CONNECTING:
        return "connecting";
    case HA_PHASE_WAITING:
        return "waiting for response";
    case HA_PHASE_READING:
        return "reading response";
    case HA_PHASE_IDLE:
        break;
    }
    return "idle";
}

static void on_tcp_closed(uv_handle_t *h)
{
    ha_probe *p = h->data;
    p->tcp_open = false;
    p->tcp_closing = false;
}

static void close_tcp(ha_probe *p, bool reset)
{
    if (!p->tcp_open || p->tcp_closing)
        return;
    p->tcp_closing = true;
    /* A reset after a complete HTTP answer leaves no TIME_WAIT behind on either side: with
     * many checks at short intervals that state would otherwise pile up by the ten thousand.
     * A plain close is kept for TCP checks, where a database would log the reset. */
    if (!reset || uv_tcp_close_reset(&p->tcp, on_tcp_closed) != 0)
        uv_close((uv_handle_t *)&p->tcp, on_tcp_closed);
}

static void finish_va(ha_probe *p, bool ok, int http_status, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

static void finish_va(ha_probe *p, bool ok, int http_status, const char *fmt, va_list ap)
{
    if (!p->running)
        return;
    p->running = false;
    uv_timer_stop(&p->timer);
    close_tcp(p, p->message_done);
    ha_result r;
    r.ok = ok;
    r.http_status = http_status;
    r.inconclusive = p->inconclusive;
    p->inconclusive = false;
    r.latency_us = (uv_hrtime() - p->start_ns) / 1000;
    vsnprintf(r.reason, sizeof(r.reason), fmt, ap);
    ha_utf8_trim_partial(r.reason); /* a long reason is cut on a character boundary */
    p->phase = HA_PHASE_IDLE;
    if (!p->shutting_down)
        p->done(p, &r);
}

void ha_probe_finish(ha_probe *p, bool ok, int http_status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    finish_va(p, ok, http_status, fmt, ap);
    va_end(ap);
}

static void on_timeout(uv_timer_t *t)
{
    ha_probe *p = t->data;
    /* A deadline that fires far too late means our own process was stopped or blocked: the
     * target never had its chance, so the attempt says nothing about it. */
    uint64_t elapsed_ms = (uv_hrtime() - p->start_ns) / 1000000;
    if (elapsed_ms > 2 * p->cfg->timeout_ms + 1000) {
        p->inconclusive = true;
        ha_probe_finish(p, false, 0,
                        "timeout fired after %llums instead of %llums: healthagg "
                        "was paused or blocked; attempt discarded",
                        (unsigned long long)elapsed_ms, (unsigned long long)p->cfg->timeout_ms);
        return;
    }
    ha_probe_finish(p, false, 0, "timeout after %llums (%s)",
                    (unsigned long long)p->cfg->timeout_ms, phase_name(p->phase));
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    ha_probe *p = h->data;
    (void)suggested;
    buf->base = p->rbuf;
    buf->len = sizeof(p->rbuf);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    ha_probe *p = s->data;
    if (!p->running)
        return;
    if (nread > 0) {
        p->phase = HA_PHASE_READING;
        p->bytes_read += (uint64_t)nread;
        p->ops->on_data(p, buf->base, (size_t)nread);
    } else if (nread == UV_EOF) {
        p->ops->on_eof(p);
    } else if (nread < 0) {
        ha_probe_finish(p, false, 0, "read: %s (%s)", uv_strerror((int)nread), p->target);
    }
}

static void on_write(uv_write_t *req, int status)
{
    ha_probe *p = req->data;
    if (status < 0 && status != UV_ECANCELED && p->running)
        ha_probe_finish(p, false, 0, "write: %s (%s)", uv_strerror(status), p->target);
}

void ha_probe_write(ha_probe *p, const char *buf, size_t len)
{
    uv_buf_t b = uv_buf_init((char *)buf, (unsigned)len);
    int rc = uv_write(&p->write_req, (uv_stream_t *)&p->tcp, &b, 1, on_write);
    if (rc != 0)
        ha_probe_finish(p, false, 0, "write: %s (%s)", uv_strerror(rc), p->target);
}

static void on_connect(uv_connect_t *req, int status)
{
    ha_probe *p = req->data;
    if (!p->running || status == UV_ECANCELED)
        return;
    if (status < 0) {
        ha_probe_finish(p, false, 0, "connect: %s (%s)", uv_strerror(status), p->target);
        return;
    }
    p->phase = HA_PHASE_WAITING;
    int rc = uv_read_start((uv_stream_t *)&p->tcp, on_alloc, on_read);
    if (rc != 0) {
        ha_probe_finish(p, false, 0, "read: %s (%s)", uv_strerror(rc), p->target);
        return;
    }
    p->ops->on_connected(p);
}

static void connect_to(ha_probe *p, const struct sockaddr *addr)
{
    int rc = uv_tcp_init(p->loop, &p->tcp);
    if (rc != 0) {
        ha_probe_finish(p, false, 0, "socket: %s", uv_strerror(rc));
        return;
    }
    p->tcp_open = true;
    p->tcp.data = p;
    p->phase = HA_PHASE_CONNECTING;
    rc = uv_tcp_connect(&p->connect_req, &p->tcp, addr, on_connect);
    if (rc != 0) {
        /* Out of descriptors or memory is our problem, not the target's. */
        p->inconclusive = rc == UV_EMFILE || rc == UV_ENFILE || rc == UV_ENOBUFS || rc == UV_ENOMEM;
        ha_probe_finish(p, false, 0, "connect: %s (%s)", uv_strerror(rc), p->target);
        return;
    }
    /* Health answers are tiny; don't let Nagle hold the request back. */
    uv_tcp_nodelay(&p->tcp, 1);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    resolve_req *rr = (resolve_req *)req;
    ha_probe *p = rr->probe;
    if (p && p->running && rr->generation == p->generation) {
        if (status < 0 || !res)
            ha_probe_finish(p, false, 0, "resolve %s: %s", p->cfg->url.host,
                            uv_strerror(status < 0 ? status : UV_EAI_NONAME));
        else
            connect_to(p, res->ai_addr);
    }
    uv_freeaddrinfo(res);
    free(rr);
}

static void start_resolve(ha_probe *p)
{
    resolve_req *rr = calloc(1, sizeof(*rr));
    if (!rr) {
        p->inconclusive = true;
        ha_probe_finish(p, false, 0, "resolve %s: out of memory", p->cfg->url.host);
        return;
    }
    rr->probe = p;
    rr->generation = p->generation;
    struct addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    char port[8];
    snprintf(port, sizeof(port), "%u", (unsigned)p->cfg->url.port);
    p->phase = HA_PHASE_RESOLVING;
    int rc = uv_getaddrinfo(p->loop, &rr->req, on_resolved, p->cfg->url.host, port, &hints);
    if (rc != 0) {
        free(rr);
        ha_probe_finish(p, false, 0, "resolve %s: %s", p->cfg->url.host, uv_strerror(rc));
    }
}

int ha_probe_init(ha_probe *p, uv_loop_t *loop, const ha_check_config *cfg, ha_probe_done_cb done,
                  void *data)
{
    memset(p, 0, sizeof(*p));
    p->loop = loop;
    p->cfg = cfg;
    p->done = done;
    p->data = data;
    p->connect_req.data = p;
    p->write_req.data = p;
    ha_format_hostport(cfg->url.host, cfg->url.host_is_ipv6, cfg->url.port, p->target,
                       sizeof(p->target));

    const char *host = cfg->url.host;
    if (strcmp(host, "localhost") == 0)
        host = "127.0.0.1";
    if (cfg->url.host_is_ipv6)
        p->addr_is_literal = uv_ip6_addr(host, cfg->url.port, (struct sockaddr_in6 *)&p->addr) == 0;
    else
        p->addr_is_literal = uv_ip4_addr(host, cfg->url.port, (struct sockaddr_in *)&p->addr) == 0;

    if (cfg->url.scheme == HA_SCHEME_HTTP) {
        p->ops = &ha_check_http_ops;
        int rc = ha_check_http_init(p);
        if (rc != 0)
            return rc;
    } else {
        p->ops = &ha_check_tcp_ops;
    }
    int rc = uv_timer_init(loop, &p->timer);
    if (rc != 0) {
        ha_probe_free(p);
        return rc;
    }
    p->timer.data = p;
    return 0;
}

int ha_probe_start(ha_probe *p)
{
    if (p->running)
        return UV_EALREADY;
    if (p->tcp_closing || p->shutting_down)
        return UV_EBUSY;
    p->generation++;
    p->running = true;
    p->start_ns = uv_hrtime();
    p->bytes_read = 0;
    p->message_done = false;
    if (p->cfg->url.scheme == HA_SCHEME_HTTP)
        ha_check_http_reset(p);
    int rc = uv_timer_start(&p->timer, on_timeout, p->cfg->timeout_ms, 0);
    if (rc != 0) {
        ha_probe_finish(p, false, 0, "timer: %s", uv_strerror(rc));
        return 0;
    }
    if (p->addr_is_literal)
        connect_to(p, (const struct sockaddr *)&p->addr);
    else
        start_resolve(p);
    return 0;
}

void ha_probe_close(ha_probe *p)
{
    p->shutting_down = true;
    p->running = false;
    if (!uv_is_closing((uv_handle_t *)&p->timer))
        uv_close((uv_handle_t *)&p->timer, NULL);
    close_tcp(p, false);
}

void ha_probe_free(ha_probe *p)
{
    free(p->request);
    p->request = NULL;
    free(p->kmp);
    p->kmp = NULL;
}
