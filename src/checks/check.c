/* check.c - the shared half of every check: resolve, connect address by address, deadline,
 * buffered writes, verdict, teardown. It names no check type: the scheme's row (check_type.h)
 * supplies the protocol and the transport, and they call back through the ha_probe_* helpers.
 *
 * One attempt is: [resolve] -> connect (next address on failure) -> transport ready ->
 * (type takes over) -> ha_probe_finish(). ha_probe_finish() is the single exit: it stops the
 * deadline, closes the socket and reports once. Late callbacks (a connect or read completing
 * after the deadline fired) see `running == false` and do nothing.
 *
 * Several addresses are tried one after another, as curl does, each getting an equal share of
 * the time left (the last one all of it), so one dead replica or an IPv6 address nothing
 * listens on cannot eat the whole timeout. Sequential rather than racing (happy eyeballs)
 * keeps one socket per check, which the fd budget in serve.c counts on. IP literals and
 * "localhost" never touch the resolver - in an awsvpc task almost every target is 127.0.0.1. */
#include "healthagg/check.h"
#include "healthagg/quote.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *phase_name(ha_probe_phase ph)
{
    switch (ph) {
    case HA_PHASE_RESOLVING:
        return "resolving host";
    case HA_PHASE_CONNECTING:
        return "connecting";
    case HA_PHASE_HANDSHAKE:
        return "tls handshake"; /* only TLS has a handshake: plain TCP is ready at once */
    case HA_PHASE_WAITING:
        return "waiting for response";
    case HA_PHASE_READING:
        return "reading response";
    case HA_PHASE_IDLE:
        break;
    }
    return "idle";
}

static void connect_next(ha_probe *p);

static void on_tcp_closed(uv_handle_t *h)
{
    ha_probe *p = h->data;
    p->tcp_open = false;
    p->tcp_closing = false;
    /* A failed address's socket is closed before the next one is opened on the same handle. */
    if (p->running && p->phase == HA_PHASE_CONNECTING)
        connect_next(p);
}

static void close_tcp(ha_probe *p, bool reset)
{
    if (!p->tcp_open || p->tcp_closing)
        return;
    p->tcp_closing = true;
    /* A reset after a complete answer leaves no TIME_WAIT behind on either side: with many
     * checks at short intervals that state would otherwise pile up by the ten thousand. A
     * plain close is kept otherwise, where a database would log the reset. */
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
    uv_timer_stop(&p->addr_timer);
    p->phase = HA_PHASE_IDLE; /* before close: on_tcp_closed must not try another address */
    close_tcp(p, p->close_reset);
    ha_result r;
    memset(&r, 0, sizeof(r));
    r.ok = ok;
    r.degraded = ok && p->warn;
    r.http_status = http_status;
    r.inconclusive = p->inconclusive;
    p->inconclusive = false;
    r.latency_us = (uv_hrtime() - p->start_ns) / 1000;
    vsnprintf(r.reason, sizeof(r.reason), fmt, ap);
    if (r.degraded && p->warn_reason[0]) {
        size_t used = strlen(r.reason), room = sizeof(r.reason) - used;
        if (snprintf(r.reason + used, room, "; %s", p->warn_reason) >= (int)room)
            r.reason[sizeof(r.reason) - 1] = '\0'; /* cut; trimmed below */
    }
    r.cert_not_after = p->cert_not_after;
    ha_utf8_trim_partial(r.reason); /* a long reason is cut on a character boundary */
    if (!p->shutting_down)
        p->done(p, &r);
}

void ha_probe_warn(ha_probe *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    p->warn = true;
    vsnprintf(p->warn_reason, sizeof(p->warn_reason), fmt, ap);
    va_end(ap);
}

void ha_probe_finish(ha_probe *p, bool ok, int http_status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    finish_va(p, ok, http_status, fmt, ap);
    va_end(ap);
}

uint64_t ha_probe_remaining_ms(const ha_probe *p)
{
    uint64_t elapsed = (uv_hrtime() - p->start_ns) / 1000000;
    return elapsed >= p->cfg->timeout_ms ? 0 : p->cfg->timeout_ms - elapsed;
}

static void on_timeout(uv_timer_t *t)
{
    ha_probe *p = t->data;
    /* A deadline that fires far too late means our own process was stopped or blocked: the
     * target never had its chance, so the attempt says nothing about it. */
    uint64_t elapsed_ms = (uv_hrtime() - p->start_ns) / 1000000;
    unsigned long long limit = (unsigned long long)p->cfg->timeout_ms;
    if (elapsed_ms > 2 * p->cfg->timeout_ms + 1000) {
        p->inconclusive = true;
        ha_probe_finish(p, false, 0,
                        "timeout fired after %llums instead of %llums: healthagg "
                        "was paused or blocked; attempt discarded",
                        (unsigned long long)elapsed_ms, limit);
        return;
    }
    if (p->phase == HA_PHASE_RESOLVING)
        ha_probe_finish(p, false, 0, "resolve %s: timeout after %llums", p->cfg->url.host, limit);
    else if (p->phase == HA_PHASE_CONNECTING && p->trail[0])
        ha_probe_finish(p, false, 0, "%s, then %s: timeout after %llums", p->trail, p->target,
                        limit);
    else
        ha_probe_finish(p, false, 0, "timeout after %llums (%s)", limit, phase_name(p->phase));
}

/* --- reading and writing ------------------------------------------------------------------ */

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
    if (nread > 0)
        p->transport->on_bytes(p, buf->base, (size_t)nread);
    else if (nread == UV_EOF)
        p->transport->on_eof(p);
    else if (nread < 0)
        ha_probe_finish(p, false, 0, "read: %s (%s)", uv_strerror((int)nread), p->target);
}

void ha_probe_deliver(ha_probe *p, const char *data, size_t len)
{
    if (!p->running || len == 0)
        return;
    p->phase = HA_PHASE_READING;
    p->bytes_read += (uint64_t)len;
    p->type->on_data(p, data, len);
}

void ha_probe_deliver_eof(ha_probe *p)
{
    if (p->running)
        p->type->on_eof(p);
}

static int outbuf_append(ha_outbuf *b, const char *data, size_t len)
{
    if (b->len + len > b->cap) {
        size_t cap = b->cap ? b->cap : 512;
        while (cap < b->len + len)
            cap *= 2;
        char *grown = realloc(b->data, cap);
        if (!grown)
            return -1;
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, data, len);
    b->len += len;
    return 0;
}

static void flush_queued(ha_probe *p);

static void on_write(uv_write_t *req, int status)
{
    ha_probe *p = req->data;
    p->writing = false;
    p->out_busy.len = 0;
    if (status < 0) {
        if (status != UV_ECANCELED && p->running)
            ha_probe_finish(p, false, 0, "write: %s (%s)", uv_strerror(status), p->target);
        return;
    }
    if (p->running)
        flush_queued(p);
}

/* Moves queued bytes into the busy buffer and starts writing them. */
static void flush_queued(ha_probe *p)
{
    if (p->writing || p->out_next.len == 0)
        return;
    ha_outbuf t = p->out_busy;
    p->out_busy = p->out_next;
    p->out_next = t;
    p->out_next.len = 0;
    uv_buf_t b = uv_buf_init(p->out_busy.data, (unsigned)p->out_busy.len);
    int rc = uv_write(&p->write_req, (uv_stream_t *)&p->tcp, &b, 1, on_write);
    if (rc != 0) {
        p->out_busy.len = 0;
        ha_probe_finish(p, false, 0, "write: %s (%s)", uv_strerror(rc), p->target);
        return;
    }
    p->writing = true;
}

int ha_probe_send_raw(ha_probe *p, const char *buf, size_t len)
{
    if (!p->running)
        return -1;
    /* The common case (a small request on an idle socket) goes out now, with no copy. */
    if (!p->writing && p->out_next.len == 0) {
        uv_buf_t b = uv_buf_init((char *)buf, (unsigned)len);
        int n = uv_try_write((uv_stream_t *)&p->tcp, &b, 1);
        if (n >= 0) {
            buf += n;
            len -= (size_t)n;
        } else if (n != UV_EAGAIN) {
            ha_probe_finish(p, false, 0, "write: %s (%s)", uv_strerror(n), p->target);
            return -1;
        }
        if (len == 0)
            return 0;
    }
    if (outbuf_append(&p->out_next, buf, len) != 0) {
        p->inconclusive = true;
        ha_probe_finish(p, false, 0, "write: out of memory");
        return -1;
    }
    flush_queued(p);
    return p->running ? 0 : -1;
}

void ha_probe_send(ha_probe *p, const char *buf, size_t len)
{
    if (p->running)
        p->transport->send(p, buf, len);
}

void ha_probe_transport_ready(ha_probe *p)
{
    if (!p->running)
        return;
    p->phase = HA_PHASE_WAITING;
    p->type->on_connected(p);
}

/* --- connecting --------------------------------------------------------------------------- */

/* The address in use failed to connect: remember why and move on, or give up. */
static void address_failed(ha_probe *p, const char *why)
{
    uv_timer_stop(&p->addr_timer);
    bool more = p->addr_index + 1 < p->addrs.n;
    if (!more) {
        if (p->trail[0])
            ha_probe_finish(p, false, 0, "%s, then %s: %s", p->trail, p->target, why);
        else
            ha_probe_finish(p, false, 0, "connect: %s (%s)", why, p->target);
        return;
    }
    /* Truncation is fine here: the trail is context, the final address's reason follows. */
    size_t off = strlen(p->trail);
    int n = 0;
    if (off == 0)
        n = snprintf(p->trail, sizeof(p->trail), "connect: %.40s (%.64s)", why, p->target);
    else if (off < sizeof(p->trail))
        n = snprintf(p->trail + off, sizeof(p->trail) - off, ", then %.64s: %.40s", p->target, why);
    (void)n;
    p->addr_index++;
    if (p->tcp_open)
        close_tcp(p, false); /* on_tcp_closed calls connect_next */
    else
        connect_next(p);
}

static void on_addr_timeout(uv_timer_t *t)
{
    ha_probe *p = t->data;
    if (p->running && p->phase == HA_PHASE_CONNECTING)
        address_failed(p, "timeout");
}

static void on_connect(uv_connect_t *req, int status)
{
    ha_probe *p = req->data;
    if (!p->running || status == UV_ECANCELED || p->phase != HA_PHASE_CONNECTING)
        return;
    if (status < 0) {
        address_failed(p, uv_strerror(status));
        return;
    }
    uv_timer_stop(&p->addr_timer);
    int rc = uv_read_start((uv_stream_t *)&p->tcp, on_alloc, on_read);
    if (rc != 0) {
        ha_probe_finish(p, false, 0, "read: %s (%s)", uv_strerror(rc), p->target);
        return;
    }
    p->phase = HA_PHASE_HANDSHAKE;
    p->transport->on_connected(p);
}

static void connect_next(ha_probe *p)
{
    const struct sockaddr_storage *addr = &p->addrs.addr[p->addr_index];
    ha_addr_format(addr, p->target, sizeof(p->target));
    p->phase = HA_PHASE_CONNECTING;
    int rc = uv_tcp_init(p->loop, &p->tcp);
    if (rc != 0) {
        p->inconclusive = true;
        ha_probe_finish(p, false, 0, "socket: %s", uv_strerror(rc));
        return;
    }
    p->tcp_open = true;
    p->tcp.data = p;
    rc = uv_tcp_connect(&p->connect_req, &p->tcp, (const struct sockaddr *)addr, on_connect);
    if (rc != 0) {
        /* Out of descriptors or memory is our problem, not the target's. */
        if (rc == UV_EMFILE || rc == UV_ENFILE || rc == UV_ENOBUFS || rc == UV_ENOMEM) {
            p->inconclusive = true;
            ha_probe_finish(p, false, 0, "connect: %s (%s)", uv_strerror(rc), p->target);
        } else {
            address_failed(p, uv_strerror(rc));
        }
        return;
    }
    /* Health answers are tiny; don't let Nagle hold the request back. */
    uv_tcp_nodelay(&p->tcp, 1);
    size_t left = p->addrs.n - p->addr_index;
    if (left > 1) {
        uint64_t share = ha_probe_remaining_ms(p) / left;
        uv_timer_start(&p->addr_timer, on_addr_timeout, share ? share : 1, 0);
    }
}

static void start_connecting(ha_probe *p)
{
    p->addr_index = 0;
    p->trail[0] = '\0';
    connect_next(p);
}

static void on_lookup(ha_lookup *l, int status, const char *err)
{
    ha_probe *p = l->data;
    if (!p->running || p->phase != HA_PHASE_RESOLVING)
        return; /* the answer is cached for the next attempt */
    if (status != 0) {
        ha_probe_finish(p, false, 0, "resolve %s: %s", p->cfg->url.host, err);
        return;
    }
    p->addrs = l->result;
    start_connecting(p);
}

/* --- lifecycle ---------------------------------------------------------------------------- */

int ha_probe_init(ha_probe *p, uv_loop_t *loop, ha_resolver *resolver, const ha_check_config *cfg,
                  ha_probe_done_cb done, void *data)
{
    memset(p, 0, sizeof(*p));
    p->loop = loop;
    p->resolver = resolver;
    p->cfg = cfg;
    p->type = cfg->row->type;
    p->transport = cfg->row->transport;
    p->done = done;
    p->data = data;
    p->connect_req.data = p;
    p->write_req.data = p;
    ha_format_hostport(cfg->url.host, cfg->url.host_is_ipv6, cfg->url.port, p->target,
                       sizeof(p->target));
    ha_lookup_init(&p->lookup, resolver, cfg->url.host, cfg->url.port, cfg->interval_ms, on_lookup,
                   p);
    int rc = UV_ENOMEM;
    if (p->type->state_size && !(p->type_state = calloc(1, p->type->state_size)))
        goto fail;
    if (p->transport && p->transport->state_size &&
        !(p->transport_state = calloc(1, p->transport->state_size)))
        goto fail;
    if (p->type->init && (rc = p->type->init(p)) != 0)
        goto fail;
    if (p->transport && p->transport->init && (rc = p->transport->init(p)) != 0)
        goto fail;
    /* uv_timer_init only fills in the struct; it cannot fail on a live loop. */
    if ((rc = uv_timer_init(loop, &p->timer)) != 0 ||
        (rc = uv_timer_init(loop, &p->addr_timer)) != 0)
        goto fail;
    p->timer.data = p;
    p->addr_timer.data = p;
    p->addr_timer_open = true;
    return 0;
fail:
    ha_probe_free(p);
    return rc;
}

int ha_probe_start(ha_probe *p)
{
    if (p->running)
        return UV_EALREADY;
    if (p->tcp_closing || p->shutting_down || p->writing)
        return UV_EBUSY;
    p->generation++;
    p->running = true;
    p->warn = false;
    p->warn_reason[0] = '\0';
    p->cert_not_after = 0;
    p->close_reset = false;
    p->start_ns = uv_hrtime();
    p->bytes_read = 0;
    p->out_next.len = 0;
    if (p->type->reset)
        p->type->reset(p);
    if (p->transport && p->transport->reset)
        p->transport->reset(p);
    int rc = uv_timer_start(&p->timer, on_timeout, p->cfg->timeout_ms, 0);
    if (rc != 0) {
        p->inconclusive = true;
        ha_probe_finish(p, false, 0, "timer: %s", uv_strerror(rc));
        return 0;
    }
    if (p->type->start) {
        p->phase = HA_PHASE_WAITING;
        p->type->start(p);
        return 0;
    }
    if (ha_addr_literal(p->cfg->url.host, p->cfg->url.host_is_ipv6, p->cfg->url.port, &p->addrs)) {
        start_connecting(p);
        return 0;
    }
    char err[128];
    p->phase = HA_PHASE_RESOLVING;
    int st = ha_lookup_start(&p->lookup, err, sizeof(err));
    if (st == 1) {
        p->addrs = p->lookup.result;
        start_connecting(p);
    } else if (st < 0) {
        p->inconclusive = true;
        ha_probe_finish(p, false, 0, "resolve %s: %s", p->cfg->url.host, err);
    }
    return 0;
}

void ha_probe_close(ha_probe *p)
{
    p->shutting_down = true;
    p->running = false;
    p->phase = HA_PHASE_IDLE;
    if (!uv_is_closing((uv_handle_t *)&p->timer))
        uv_close((uv_handle_t *)&p->timer, NULL);
    if (p->addr_timer_open && !uv_is_closing((uv_handle_t *)&p->addr_timer))
        uv_close((uv_handle_t *)&p->addr_timer, NULL);
    close_tcp(p, false);
}

void ha_probe_free(ha_probe *p)
{
    if (p->type && p->type->free && p->type_state)
        p->type->free(p);
    if (p->transport && p->transport->free && p->transport_state)
        p->transport->free(p);
    free(p->type_state);
    p->type_state = NULL;
    free(p->transport_state);
    p->transport_state = NULL;
    free(p->out_busy.data);
    free(p->out_next.data);
    memset(&p->out_busy, 0, sizeof(p->out_busy));
    memset(&p->out_next, 0, sizeof(p->out_next));
}
