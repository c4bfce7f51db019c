/* server.c - serves /livez, /readyz, /health and /metrics from the cache.
 *
 * A request is: llhttp parses it, on_message_complete routes it to a cached response, one
 * uv_write sends it. The response buffers are shared and reference-counted; the connection,
 * its parser, read buffer and write request are pooled, so a request on an open connection
 * allocates nothing. Pipelined requests queue up to HA_CONN_QUEUE responses behind a write
 * still in flight; a client that pipelines deeper while not reading is closed.
 *
 * Timeouts are enforced by one sweep timer walking every connection once per tick, instead of
 * a timer per connection: O(connections) per tick, at most max_connections (1024 by default)
 * cheap comparisons, and no timer heap churn on every read. The price is that a timeout
 * fires up to one tick (250 ms) late, which no health client will notice. */
#include "healthagg/server.h"

#include "healthagg/context.h"

#include <ctype.h>
#include <llhttp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define HA_CONN_QUEUE 3 /* +1 buffer for a closing head: libuv keeps 4 buffers inline */
#define HA_CONN_RBUF 2048
#define HA_PATH_BUF 128 /* "/health?group=<31 bytes>&history=1" and then some */
#define HA_SWEEP_MS 250
#define HA_FREE_POOL_MAX 256

typedef struct queued_response {
    ha_response *resp;
    bool head;       /* HEAD: send only the header part */
    bool last;       /* the connection closes after it: send the "Connection: close" head */
    bool keep_alive; /* an HTTP/1.0 keep-alive request kept open: say "Connection: keep-alive" */
} queued_response;

/* Where on_url is in the request target: an absolute-form target ("http://host/readyz", which
 * a server must accept per RFC 9112 section 3.2.2) has its scheme and authority dropped as it
 * streams in, so routing sees only the path, as for the usual origin-form "/readyz". */
enum { URL_PREFIX, URL_AUTHORITY, URL_PATH };

struct ha_conn {
    uv_tcp_t tcp; /* first: the handle's address is the connection's */
    ha_server *srv;
    ha_conn *prev, *next;
    llhttp_t parser;
    uv_write_t write_req;
    queued_response inflight[HA_CONN_QUEUE];
    size_t n_inflight;
    queued_response queue[HA_CONN_QUEUE];
    size_t n_queue;
    uint64_t phase_start_ms; /* when the current request (or the wait for one) began */
    bool in_request;         /* bytes of a request have arrived, its end has not */
    bool close_after_write;
    bool closing;
    bool remote; /* the peer is not on loopback and details are guarded: 403 for them */
    unsigned requests;
    size_t header_bytes;
    ha_response *error; /* set by a parser callback that rejects the request */
    char path[HA_PATH_BUF];
    size_t path_len;
    bool path_truncated;
    unsigned char url_state; /* URL_PREFIX, URL_AUTHORITY or URL_PATH */
    char rbuf[HA_CONN_RBUF];
};

static void conn_close(ha_conn *c);

static uint64_t now_ms(ha_conn *c)
{
    return uv_now(&c->srv->ctx->loop);
}

/* --- parser callbacks -------------------------------------------------------------------- */

static bool over_header_limit(ha_conn *c, size_t more)
{
    c->header_bytes += more;
    if (c->header_bytes > c->srv->ctx->config.limits.max_header_bytes) {
        c->error = c->srv->ctx->cache.too_large;
        return true;
    }
    return false;
}

static int on_message_begin(llhttp_t *p)
{
    ha_conn *c = p->data;
    if (!c->in_request) {
        c->in_request = true;
        c->phase_start_ms = now_ms(c);
    }
    c->header_bytes = 0;
    c->path_len = 0;
    c->path_truncated = false;
    c->url_state = URL_PREFIX;
    return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t len)
{
    ha_conn *c = p->data;
    if (over_header_limit(c, len))
        return -1;
    while (len > 0 && c->url_state != URL_PATH) {
        char ch = *at++;
        len--;
        if (c->url_state == URL_AUTHORITY) { /* skip "host:port" up to the path or query */
            if (ch == '/' || ch == '?') {
                c->url_state = URL_PATH;
                if (ch == '?')
                    c->path[c->path_len++] = '/';
                c->path[c->path_len++] = ch;
                c->path[c->path_len] = '\0';
            }
            continue;
        }
        /* URL_PREFIX: is this "http://" or "https://" (any case)? The bytes are kept in case
         * it is not; the buffer is far longer than the prefix. */
        c->path[c->path_len++] = (char)tolower((unsigned char)ch);
        c->path[c->path_len] = '\0';
        if (strcmp(c->path, "http://") == 0 || strcmp(c->path, "https://") == 0) {
            c->path_len = 0;
            c->path[0] = '\0';
            c->url_state = URL_AUTHORITY;
        } else if (strncmp("http://", c->path, c->path_len) != 0 &&
                   strncmp("https://", c->path, c->path_len) != 0) {
            c->url_state = URL_PATH; /* origin-form (or anything else): keep it as it came */
        }
    }
    if (c->url_state != URL_PATH || len == 0)
        return 0;
    size_t room = sizeof(c->path) - 1 - c->path_len;
    size_t n = len < room ? len : room;
    memcpy(c->path + c->path_len, at, n);
    c->path_len += n;
    c->path[c->path_len] = '\0';
    if (n < len)
        c->path_truncated = true;
    return 0;
}

static int on_header_bytes(llhttp_t *p, const char *at, size_t len)
{
    (void)at;
    return over_header_limit(p->data, len + 2) ? -1 : 0; /* +2: the ": " or CRLF around it */
}

static int on_headers_complete(llhttp_t *p)
{
    ha_conn *c = p->data;
    /* We never switch protocols: an Upgrade request is answered as the plain GET it is, and
     * the connection closed after it, before the client starts speaking something else. */
    if (p->upgrade) {
        p->upgrade = 0;
        c->close_after_write = true;
    }
    /* The method is the first thing wrong with a POST, whatever its body. */
    if (p->method != HTTP_GET && p->method != HTTP_HEAD) {
        c->error = c->srv->ctx->cache.bad_method;
        return -1;
    }
    /* Health requests carry no body; refusing one keeps a request bounded by its headers. */
    if ((p->flags & F_CHUNKED) || ((p->flags & F_CONTENT_LENGTH) && p->content_length > 0)) {
        c->error = c->srv->ctx->cache.has_body;
        return -1;
    }
    return 0;
}

/* Whether the query string (after '?') holds the parameter `kv` exactly ("history=1"). */
static bool query_has(const char *path, size_t plen, const char *kv)
{
    size_t kl = strlen(kv);
    const char *q = path + plen;
    while (*q) {
        q++; /* past '?' or '&' */
        size_t n = strcspn(q, "&");
        if (n == kl && memcmp(q, kv, kl) == 0)
            return true;
        q += n;
    }
    return false;
}

/* The value of the query parameter `name` (the first one), or NULL; *len gets its length. */
static const char *query_value(const char *path, size_t plen, const char *name, size_t *len)
{
    size_t kl = strlen(name);
    const char *q = path + plen;
    while (*q) {
        q++; /* past '?' or '&' */
        size_t n = strcspn(q, "&");
        if (n > kl && q[kl] == '=' && memcmp(q, name, kl) == 0) {
            *len = n - kl - 1;
            return q + kl + 1;
        }
        q += n;
    }
    return NULL;
}

/* ?group=NAME: -1 when absent, else the group's index, or -2 for a name no check has (or one
 * the path buffer may have cut: a prefix of a long name must not select a shorter group). */
static int requested_group(ha_conn *c, size_t plen)
{
    size_t len;
    const char *v = query_value(c->path, plen, "group", &len);
    if (!v)
        return -1;
    if (c->path_truncated && v + len == c->path + c->path_len)
        return -2;
    int g = ha_config_group_find(&c->srv->ctx->config, v, len);
    return g < 0 ? -2 : g;
}

static ha_response *route(ha_conn *c, bool *head)
{
    ha_context *ctx = c->srv->ctx;
    *head = c->parser.method == HTTP_HEAD; /* other methods were refused at the headers */
    size_t plen = strcspn(c->path, "?");
    if (c->path_truncated && plen == c->path_len)
        return ctx->cache.not_found;
#define ROUTE_IS(lit) (plen == sizeof(lit) - 1 && memcmp(c->path, lit, plen) == 0)
    if (ROUTE_IS("/readyz")) {
        int g = plen == c->path_len ? -1 : requested_group(c, plen);
        if (g == -2)
            return ctx->cache.unknown_group;
        return g >= 0 ? ha_cache_group_readyz(ctx, (size_t)g) : ha_cache_readyz(ctx);
    }
    if (ROUTE_IS("/livez"))
        return ha_cache_livez(ctx);
    if (ROUTE_IS("/health") || ROUTE_IS("/metrics")) {
        if (c->remote)
            return ctx->cache.forbidden;
        if (plen == sizeof("/metrics") - 1)
            return ha_cache_metrics(ctx);
        bool history =
            query_has(c->path, plen, "history=1") || query_has(c->path, plen, "history=true");
        int g = plen == c->path_len ? -1 : requested_group(c, plen);
        if (g == -2)
            return ctx->cache.unknown_group_json;
        if (g >= 0)
            return ha_cache_group_health(ctx, (size_t)g, history);
        if (history)
            return ha_cache_health_history(ctx);
        return ha_cache_health(ctx);
    }
#undef ROUTE_IS
    return ctx->cache.not_found;
}

static void on_write_done(uv_write_t *req, int status);

/* Lays out the buffers for a batch of responses; returns how many. */
static size_t fill_bufs(const queued_response *items, size_t n, uv_buf_t *bufs, size_t *total)
{
    size_t nb = 0;
    *total = 0;
    for (size_t i = 0; i < n; i++) {
        ha_response *r = items[i].resp;
        size_t body = r->len - r->head_len;
        if (items[i].last || items[i].keep_alive) {
            size_t off = items[i].last ? r->len : r->len + r->close_head_len;
            size_t hl = items[i].last ? r->close_head_len : r->ka_head_len;
            bufs[nb++] = uv_buf_init(r->data + off, (unsigned)hl);
            *total += hl;
        } else {
            bufs[nb++] = uv_buf_init(r->data, (unsigned)r->head_len);
            *total += r->head_len;
        }
        if (!items[i].head && body > 0) {
            /* The usual head and the body are contiguous: extend instead of adding one. */
            if (!items[i].last && !items[i].keep_alive) {
                bufs[nb - 1].len += body;
            } else {
                bufs[nb++] = uv_buf_init(r->data + r->head_len, (unsigned)body);
            }
            *total += body;
        }
    }
    return nb;
}

static void release_items(const queued_response *items, size_t n)
{
    for (size_t i = 0; i < n; i++)
        ha_response_unref(items[i].resp);
}

static void start_write(ha_conn *c, const queued_response *items, size_t n)
{
    uv_buf_t bufs[2 * HA_CONN_QUEUE] = {{0}};
    size_t total;
    size_t nb = fill_bufs(items, n, bufs, &total);
    bool closing = n > 0 && items[n - 1].last;
    /* Try the write now. A health answer almost always fits the socket buffer, and finishing
     * here spares uv_write's bookkeeping, which also re-arms the fd in epoll on every request
     * (one epoll_ctl syscall per request with libuv 1.44). */
    int w = uv_try_write((uv_stream_t *)&c->tcp, bufs, (unsigned)nb);
    if (w == (int)total) {
        release_items(items, n);
        if (closing)
            conn_close(c);
        return;
    }
    if (w < 0 && w != UV_EAGAIN) {
        release_items(items, n);
        conn_close(c);
        return;
    }
    /* Partly written (or not at all): hand the rest to libuv, which finishes it when the
     * socket drains. */
    size_t skip = w > 0 ? (size_t)w : 0, first = 0;
    while (skip > 0 && skip >= bufs[first].len)
        skip -= bufs[first++].len;
    bufs[first].base += skip;
    bufs[first].len -= skip;
    memcpy(c->inflight, items, n * sizeof(items[0]));
    c->n_inflight = n;
    c->phase_start_ms = now_ms(c); /* a client that never reads is cut after request_timeout */
    if (uv_write(&c->write_req, (uv_stream_t *)&c->tcp, bufs + first, (unsigned)(nb - first),
                 on_write_done) != 0) {
        release_items(c->inflight, n);
        c->n_inflight = 0;
        conn_close(c);
    }
}

/* Sends `r` now, or queues it behind the write in flight. Returns -1 when the queue is full. */
static int respond(ha_conn *c, ha_response *r, bool head)
{
    if (!r)
        r = c->srv->ctx->cache.bad_request; /* rendering failed (out of memory) */
    ha_response_ref(r);
    /* HTTP/1.0 closes unless both sides say keep-alive: a 1.0 client that asked for it and is
     * kept must be told, or it waits for a close that never comes. */
    bool ka10 = !c->close_after_write && c->parser.http_major == 1 && c->parser.http_minor == 0;
    queued_response q = {r, head, c->close_after_write, ka10};
    if (c->n_inflight == 0) {
        start_write(c, &q, 1);
        return 0;
    }
    if (c->n_queue == HA_CONN_QUEUE) {
        ha_response_unref(r);
        return -1;
    }
    c->queue[c->n_queue++] = q;
    return 0;
}

static int on_message_complete(llhttp_t *p)
{
    ha_conn *c = p->data;
    ha_server *s = c->srv;
    bool head;
    ha_response *r = route(c, &head);
    c->requests++;
    c->in_request = false;
    c->phase_start_ms = now_ms(c);
    if (!llhttp_should_keep_alive(p) ||
        c->requests >= s->ctx->config.limits.max_requests_per_connection)
        c->close_after_write = true;
    if (respond(c, r, head) != 0) {
        conn_close(c);
        return HPE_PAUSED;
    }
    return c->close_after_write ? HPE_PAUSED : 0;
}

static const llhttp_settings_t request_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_bytes,
    .on_header_value = on_header_bytes,
    .on_headers_complete = on_headers_complete,
    .on_message_complete = on_message_complete,
};

/* --- connection life ------------------------------------------------------------------- */

static void on_conn_closed(uv_handle_t *h)
{
    ha_conn *c = (ha_conn *)h;
    ha_server *s = c->srv;
    for (size_t i = 0; i < c->n_queue; i++)
        ha_response_unref(c->queue[i].resp);
    c->n_queue = 0;
    /* inflight responses are released by on_write_done, which libuv runs (ECANCELED)
     * before this close callback. */
    if (c->prev)
        c->prev->next = c->next;
    else
        s->active = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->n_active--;
    if (s->n_free < HA_FREE_POOL_MAX && !s->ctx->stopping) {
        c->next = s->free_list;
        s->free_list = c;
        s->n_free++;
    } else {
        free(c);
    }
}

static void conn_close(ha_conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

static void on_write_done(uv_write_t *req, int status)
{
    ha_conn *c = (ha_conn *)req->handle;
    release_items(c->inflight, c->n_inflight);
    c->n_inflight = 0;
    if (!c->in_request)
        c->phase_start_ms = now_ms(c); /* idle from here */
    if (status < 0 || c->closing) {
        conn_close(c);
        return;
    }
    if (c->n_queue > 0) {
        queued_response items[HA_CONN_QUEUE];
        size_t n = c->n_queue;
        memcpy(items, c->queue, n * sizeof(items[0]));
        c->n_queue = 0;
        start_write(c, items, n);
        return;
    }
    if (c->close_after_write)
        conn_close(c);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    ha_conn *c = (ha_conn *)h;
    (void)suggested;
    buf->base = c->rbuf;
    buf->len = sizeof(c->rbuf);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    ha_conn *c = (ha_conn *)stream;
    if (c->closing)
        return;
    if (nread < 0) {
        conn_close(c);
        return;
    }
    if (nread == 0)
        return;
    if (c->close_after_write) /* a response that ends the connection is on its way */
        return;
    llhttp_errno_t err = llhttp_execute(&c->parser, buf->base, (size_t)nread);
    if (err == HPE_OK)
        return;
    if (err == HPE_PAUSED) {
        if (c->close_after_write)
            uv_read_stop(stream);
        return;
    }
    /* A request we refuse: answer why, then close. */
    ha_response *r = c->error ? c->error : c->srv->ctx->cache.bad_request;
    c->error = NULL;
    c->close_after_write = true;
    uv_read_stop(stream);
    if (respond(c, r, false) != 0)
        conn_close(c);
}

static ha_conn *conn_get(ha_server *s)
{
    ha_conn *c = s->free_list;
    if (c) {
        s->free_list = c->next;
        s->n_free--;
    } else {
        c = malloc(sizeof(*c));
        if (!c)
            return NULL;
    }
    memset(c, 0, offsetof(ha_conn, rbuf));
    c->srv = s;
    return c;
}

/* A connection beyond max_connections: say so in one non-blocking write, then close, so a
 * client (and `healthagg probe`) can tell "busy" from "dead". The request bytes already
 * received are read first: closing with unread data would send a reset, and the client could
 * lose the answer. Costs no more than a close when the client is gone or slow. */
static void refuse(ha_conn *c)
{
    uv_os_fd_t fd;
    if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0) {
        char sink[1024];
        for (int i = 0; i < 8 && recv(fd, sink, sizeof(sink), MSG_DONTWAIT) > 0; i++)
            ;
    }
    ha_response *r = c->srv->ctx->cache.busy;
    uv_buf_t b = uv_buf_init(r->data, (unsigned)r->len);
    (void)uv_try_write((uv_stream_t *)&c->tcp, &b, 1); /* best effort: the close follows anyway */
    conn_close(c);
}

static bool is_loopback(const struct sockaddr_storage *a)
{
    if (a->ss_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)a)->sin_addr.s_addr) >> 24) == 127;
    if (a->ss_family == AF_INET6) {
        const struct in6_addr *x = &((const struct sockaddr_in6 *)a)->sin6_addr;
        if (IN6_IS_ADDR_LOOPBACK(x))
            return true;
        return IN6_IS_ADDR_V4MAPPED(x) && x->s6_addr[12] == 127;
    }
    return a->ss_family == AF_UNIX; /* adopted socketpairs (the fuzz target) */
}

/* Asked once per connection, and only when details are guarded; a peer we cannot name is
 * treated as remote. */
static bool peer_is_loopback(ha_conn *c)
{
    struct sockaddr_storage peer;
    int len = sizeof(peer);
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&peer, &len) != 0)
        return false;
    return is_loopback(&peer);
}

/* Sets up a connection whose socket is already accepted (or adopted). */
static void conn_begin(ha_server *s, ha_conn *c)
{
    if (s->n_active > s->ctx->config.limits.max_connections) {
        s->rejected++;
        refuse(c);
        return;
    }
    llhttp_init(&c->parser, HTTP_REQUEST, &request_settings);
    c->parser.data = c;
    c->in_request = true; /* the first request must arrive within request_timeout */
    c->phase_start_ms = now_ms(c);
    uv_tcp_nodelay(&c->tcp, 1);
    if (s->guard_details)
        c->remote = !peer_is_loopback(c);
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
        conn_close(c);
}

/* Allocates a connection, initialises its handle and links it in. */
static ha_conn *conn_new(ha_server *s)
{
    ha_conn *c = conn_get(s);
    if (!c)
        return NULL;
    if (uv_tcp_init(&s->ctx->loop, &c->tcp) != 0) {
        free(c);
        return NULL;
    }
    c->next = s->active;
    if (s->active)
        s->active->prev = c;
    s->active = c;
    s->n_active++;
    return c;
}

static void on_connection(uv_stream_t *listener, int status)
{
    ha_server *s = listener->data;
    if (status < 0 || s->ctx->stopping)
        return;
    ha_conn *c = conn_new(s);
    if (!c)
        return; /* out of memory: the connection waits in the backlog for the next try */
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c);
        return;
    }
    conn_begin(s, c);
}

int ha_server_adopt(ha_server *s, uv_os_sock_t sock)
{
    ha_conn *c = conn_new(s);
    if (!c)
        return UV_ENOMEM;
    int rc = uv_tcp_open(&c->tcp, sock);
    if (rc != 0) {
        conn_close(c);
        return rc;
    }
    conn_begin(s, c);
    return 0;
}

static void on_sweep(uv_timer_t *t)
{
    ha_server *s = t->data;
    const ha_server_limits *l = &s->ctx->config.limits;
    uint64_t now = uv_now(&s->ctx->loop);
    for (ha_conn *c = s->active, *next; c; c = next) {
        next = c->next;
        if (c->closing)
            continue;
        /* Reading a request and draining an answer share the request timeout: a client that
         * stops reading holds memory in the kernel and a response reference here. */
        bool busy = c->in_request || c->n_inflight > 0;
        uint64_t limit = busy ? l->request_timeout_ms : l->idle_timeout_ms;
        if (now - c->phase_start_ms >= limit)
            conn_close(c);
    }
}

int ha_server_start(ha_server *s, ha_context *ctx, char *err, size_t errlen)
{
    memset(s, 0, sizeof(*s));
    s->ctx = ctx;
    const ha_config *cfg = &ctx->config;
    struct sockaddr_storage addr;
    bool v6 = strchr(cfg->listen_host, ':') != NULL;
    int rc = v6 ? uv_ip6_addr(cfg->listen_host, cfg->listen_port, (struct sockaddr_in6 *)&addr)
                : uv_ip4_addr(cfg->listen_host, cfg->listen_port, (struct sockaddr_in *)&addr);
    char want[80];
    ha_format_hostport(cfg->listen_host, v6, cfg->listen_port, want, sizeof(want));
    if (rc != 0) {
        snprintf(err, errlen, "listen: %s is not a valid address: %s", want, uv_strerror(rc));
        return -1;
    }
    if ((rc = uv_tcp_init(&ctx->loop, &s->listener)) != 0) {
        snprintf(err, errlen, "listen: cannot create a socket: %s", uv_strerror(rc));
        return -1;
    }
    s->listener.data = s;
    s->listening = true;
    rc = uv_tcp_bind(&s->listener, (const struct sockaddr *)&addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&s->listener, 511, on_connection);
    if (rc != 0) {
        snprintf(err, errlen, "listen: cannot listen on %s: %s; %s", want, uv_strerror(rc),
                 rc == UV_EADDRINUSE
                     ? "another process has that port: pick another with --listen or "
                       "HEALTHAGG_LISTEN (and give probe the same)"
                     : "check the address with --listen or HEALTHAGG_LISTEN");
        return -1;
    }
    struct sockaddr_storage bound;
    memset(&bound, 0, sizeof(bound));
    int blen = sizeof(bound);
    char ip[64] = "?";
    uint16_t port = cfg->listen_port;
    if (uv_tcp_getsockname(&s->listener, (struct sockaddr *)&bound, &blen) == 0) {
        if (bound.ss_family == AF_INET6) {
            uv_ip6_name((struct sockaddr_in6 *)&bound, ip, sizeof(ip));
            port = ntohs(((struct sockaddr_in6 *)&bound)->sin6_port);
        } else {
            uv_ip4_name((struct sockaddr_in *)&bound, ip, sizeof(ip));
            port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
        }
    }
    ha_format_hostport(ip, bound.ss_family == AF_INET6, port, s->bound, sizeof(s->bound));
    s->guard_details = !cfg->public_details && !is_loopback(&bound);
    if ((rc = uv_timer_init(&ctx->loop, &s->sweep)) != 0 ||
        (rc = uv_timer_start(&s->sweep, on_sweep, HA_SWEEP_MS, HA_SWEEP_MS)) != 0) {
        snprintf(err, errlen, "listen: timer: %s", uv_strerror(rc));
        return -1;
    }
    s->sweep.data = s;
    return 0;
}

void ha_server_stop(ha_server *s)
{
    if (s->listening) {
        uv_close((uv_handle_t *)&s->listener, NULL);
        s->listening = false;
        if (s->sweep.loop && !uv_is_closing((uv_handle_t *)&s->sweep))
            uv_close((uv_handle_t *)&s->sweep, NULL);
    }
    for (ha_conn *c = s->active; c; c = c->next)
        conn_close(c);
}

void ha_server_free(ha_server *s)
{
    while (s->free_list) {
        ha_conn *c = s->free_list;
        s->free_list = c->next;
        free(c);
    }
    s->n_free = 0;
}
