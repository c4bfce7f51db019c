/* h2_client.c - an nghttp2 client session driven purely by bytes, for one request at a time.
 *
 * nghttp2 does all of HTTP/2 (framing, HPACK, flow control, SETTINGS/PING answers, message
 * validation); this file adapts it to the probe engine: nghttp2_session_mem_recv() for what the
 * peer sent, nghttp2_session_mem_send() flushed through the caller's `send` after every step,
 * and the verdict-relevant events folded into one state (RUNNING/DONE/FAILED) with a reason a
 * human can act on. Trade-off: a session per request (nghttp2 owns its HPACK tables and stream
 * objects) instead of reusing one connection across probes: a health check must see a fresh
 * connection succeed, and a reused one would hide a server that stopped accepting. Its dozens of
 * small allocations come from a caller-owned arena (a bump allocator reset per request), so a
 * probe costs no malloc/free in the steady state. Every input is bounded: bytes per request
 * (`max_input`), header bytes, and nghttp2's own flood limits. */
#include "healthagg/h2_client.h"

#include <nghttp2/nghttp2.h>

#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

enum { BLOCK_UNDECIDED, BLOCK_INTERIM, BLOCK_RESPONSE, BLOCK_TRAILERS };

const char *ha_h2_error_code_name(uint32_t code)
{
    return nghttp2_http2_strerror(code);
}

/* --- the arena: nghttp2_mem over a fixed buffer ------------------------------------------- */

typedef struct arena_hdr {
    size_t size; /* usable bytes of this block */
    size_t prev; /* offset of the block allocated before it (for freeing the last one) */
} arena_hdr;

#define ARENA_ALIGN 16
#define ARENA_HDR ((sizeof(arena_hdr) + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1))

static bool in_arena(const ha_h2_arena *a, const void *p)
{
    const uint8_t *b = p;
    return a->base && b >= a->base && b < a->base + HA_H2_ARENA_BYTES;
}

static void *arena_malloc(size_t size, void *ud)
{
    ha_h2_arena *a = ud;
    size_t need = ARENA_HDR + ((size + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1));
    if (a->base && size <= HA_H2_ARENA_BYTES && need <= HA_H2_ARENA_BYTES - a->used) {
        arena_hdr *h = (arena_hdr *)(void *)(a->base + a->used);
        h->size = need - ARENA_HDR;
        h->prev = a->last;
        a->last = a->used;
        a->used += need;
        return (uint8_t *)h + ARENA_HDR;
    }
    a->fallbacks++;
    return malloc(size);
}

static void arena_free(void *ptr, void *ud)
{
    ha_h2_arena *a = ud;
    if (!ptr)
        return;
    if (!in_arena(a, ptr)) {
        free(ptr);
        return;
    }
    /* Only the most recent block is given back (stack order); the rest waits for the reset. */
    size_t off = (size_t)((uint8_t *)ptr - a->base) - ARENA_HDR;
    if (off == a->last && a->used > 0) {
        const arena_hdr *h = (const arena_hdr *)(void *)(a->base + off);
        a->used = off;
        a->last = h->prev;
    }
}

static void *arena_calloc(size_t n, size_t size, void *ud)
{
    if (size && n > SIZE_MAX / size)
        return NULL;
    void *p = arena_malloc(n * size, ud);
    if (p)
        memset(p, 0, n * size);
    return p;
}

static void *arena_realloc(void *ptr, size_t size, void *ud)
{
    ha_h2_arena *a = ud;
    if (!ptr)
        return arena_malloc(size, ud);
    if (!in_arena(a, ptr))
        return realloc(ptr, size);
    const arena_hdr *h = (const arena_hdr *)(void *)((uint8_t *)ptr - ARENA_HDR);
    size_t old = h->size;
    if (size <= old)
        return ptr;
    void *n = arena_malloc(size, ud);
    if (n) {
        memcpy(n, ptr, old);
        arena_free(ptr, ud);
    }
    return n;
}

static void fail(ha_h2_client *c, ha_h2_error e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(ha_h2_client *c, ha_h2_error e, const char *fmt, ...)
{
    if (c->state != HA_H2_RUNNING)
        return; /* the first reason is the one that explains the rest */
    c->state = HA_H2_FAILED;
    c->error = e;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->reason, sizeof(c->reason), fmt, ap);
    va_end(ap);
}

void ha_h2_client_fail(ha_h2_client *c, const char *fmt, ...)
{
    if (c->state != HA_H2_RUNNING)
        return;
    c->state = HA_H2_FAILED;
    c->error = HA_H2_ERR_CALLER;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->reason, sizeof(c->reason), fmt, ap);
    va_end(ap);
}

/* GOAWAY debug data is the peer's free text: printable ASCII only, bounded. */
static void printable(const uint8_t *in, size_t len, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < len && o + 1 < cap; i++)
        out[o++] = (in[i] >= 0x20 && in[i] < 0x7f) ? (char)in[i] : '?';
    out[o] = '\0';
}

static const char *frame_name(uint8_t type)
{
    static const char *const names[] = {"DATA",          "HEADERS",      "PRIORITY", "RST_STREAM",
                                        "SETTINGS",      "PUSH_PROMISE", "PING",     "GOAWAY",
                                        "WINDOW_UPDATE", "CONTINUATION"};
    return type < sizeof(names) / sizeof(names[0]) ? names[type] : "unknown";
}

static void goaway_reason(ha_h2_client *c, const char *what)
{
    fail(c, HA_H2_ERR_GOAWAY, "GOAWAY (%s)%s%s", ha_h2_error_code_name(c->goaway_code),
         what[0] ? ": " : "", what);
}

static int on_begin_headers(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    ha_h2_client *c = ud;
    (void)s;
    if (f->hd.stream_id == c->stream_id)
        c->block = BLOCK_UNDECIDED;
    return 0;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags, void *ud)
{
    ha_h2_client *c = ud;
    (void)s;
    (void)flags;
    if (f->hd.type != NGHTTP2_HEADERS || f->hd.stream_id != c->stream_id ||
        c->state != HA_H2_RUNNING)
        return 0;
    c->header_bytes += namelen + valuelen;
    if (c->header_bytes > HA_H2_MAX_HEADER_BYTES) {
        fail(c, HA_H2_ERR_TOO_BIG, "response header fields over %d bytes", HA_H2_MAX_HEADER_BYTES);
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    /* A block's kind is told by its first field: only a response starts with :status (nghttp2
     * has checked that pseudo-headers come first and that trailers have none). */
    if (c->block == BLOCK_UNDECIDED) {
        if (namelen == 7 && memcmp(name, ":status", 7) == 0) {
            int st = 0;
            for (size_t i = 0; i < valuelen && i < 3; i++)
                st = st * 10 + (value[i] - '0'); /* nghttp2 has checked: 3 digits */
            if (st >= 100 && st < 200) {
                c->block = BLOCK_INTERIM; /* 1xx: the real answer follows */
            } else {
                c->block = BLOCK_RESPONSE;
                c->status = st;
                c->headers_seen = true;
            }
        } else {
            c->block = BLOCK_TRAILERS;
            c->trailers_seen = true;
        }
    }
    if (c->block == BLOCK_INTERIM)
        return 0;
    ha_h2_block block = c->block == BLOCK_RESPONSE ? HA_H2_HEADERS : HA_H2_TRAILERS;
    if (c->cb->on_header && c->cb->on_header(c->ud, block, (const char *)name, namelen,
                                             (const char *)value, valuelen) != 0) {
        if (c->state == HA_H2_RUNNING)
            fail(c, HA_H2_ERR_CALLER, "response rejected");
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    return 0;
}

static int on_data_chunk(nghttp2_session *s, uint8_t flags, int32_t stream_id, const uint8_t *data,
                         size_t len, void *ud)
{
    ha_h2_client *c = ud;
    (void)s;
    (void)flags;
    if (stream_id != c->stream_id || c->state != HA_H2_RUNNING)
        return 0;
    if (c->cb->on_data && c->cb->on_data(c->ud, data, len) != 0) {
        if (c->state == HA_H2_RUNNING)
            fail(c, HA_H2_ERR_CALLER, "response rejected");
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    return 0;
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    ha_h2_client *c = ud;
    (void)s;
    switch (f->hd.type) {
    case NGHTTP2_HEADERS:
    case NGHTTP2_DATA:
        if (f->hd.stream_id == c->stream_id && (f->hd.flags & NGHTTP2_FLAG_END_STREAM))
            c->end_stream = true;
        break;
    case NGHTTP2_RST_STREAM:
        if (f->hd.stream_id == c->stream_id) {
            c->rst = true;
            c->rst_code = f->rst_stream.error_code;
        }
        break;
    case NGHTTP2_GOAWAY: {
        c->goaway = true;
        c->goaway_code = f->goaway.error_code;
        c->goaway_last_stream = f->goaway.last_stream_id;
        /* A graceful GOAWAY (NO_ERROR) that covers our stream lets it finish. Otherwise our
         * request was not processed, or the peer is tearing the connection down for an error
         * (RFC 9113 6.8): either way the answer will not come. */
        bool unprocessed = c->goaway_last_stream < c->stream_id;
        if (!c->end_stream && (unprocessed || c->goaway_code != NGHTTP2_NO_ERROR)) {
            char dbg[96];
            printable(f->goaway.opaque_data, f->goaway.opaque_data_len, dbg, sizeof(dbg));
            char what[160];
            snprintf(what, sizeof(what), "%s%s%s", unprocessed ? "request not processed" : "",
                     unprocessed && dbg[0] ? ", " : "", dbg);
            goaway_reason(c, what);
        }
        break;
    }
    default:
        break;
    }
    return 0;
}

static int on_invalid_frame(nghttp2_session *s, const nghttp2_frame *f, int lib_error, void *ud)
{
    ha_h2_client *c = ud;
    (void)s;
    fail(c, HA_H2_ERR_PROTOCOL, "HTTP/2: invalid %s frame: %s", frame_name(f->hd.type),
         nghttp2_strerror(lib_error));
    return 0;
}

/* What nghttp2 sends back when the peer broke the protocol says best what went wrong: a GOAWAY
 * carries its reason as debug data, an RST_STREAM its error code. */
static int on_frame_send(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    ha_h2_client *c = ud;
    (void)s;
    if (f->hd.type == NGHTTP2_GOAWAY && f->goaway.error_code != NGHTTP2_NO_ERROR) {
        char dbg[120];
        printable(f->goaway.opaque_data, f->goaway.opaque_data_len, dbg, sizeof(dbg));
        fail(c, HA_H2_ERR_PROTOCOL, "HTTP/2: %s (%s)", dbg[0] ? dbg : "connection error",
             ha_h2_error_code_name(f->goaway.error_code));
    } else if (f->hd.type == NGHTTP2_RST_STREAM && f->hd.stream_id == c->stream_id) {
        fail(c, HA_H2_ERR_PROTOCOL, "HTTP/2: invalid response, stream reset (%s)",
             ha_h2_error_code_name(f->rst_stream.error_code));
    }
    return 0;
}

static int on_error(nghttp2_session *s, int lib_error, const char *msg, size_t len, void *ud)
{
    ha_h2_client *c = ud;
    (void)s;
    (void)lib_error;
    char text[160];
    size_t n = len < sizeof(text) - 1 ? len : sizeof(text) - 1;
    printable((const uint8_t *)msg, n, text, sizeof(text));
    fail(c, HA_H2_ERR_PROTOCOL, "HTTP/2: %s", text);
    return 0;
}

static int on_stream_close(nghttp2_session *s, int32_t stream_id, uint32_t code, void *ud)
{
    ha_h2_client *c = ud;
    (void)s;
    if (stream_id != c->stream_id)
        return 0;
    if (code == NGHTTP2_NO_ERROR && c->end_stream) {
        if (c->state == HA_H2_RUNNING)
            c->state = HA_H2_DONE;
    } else if (c->rst) {
        fail(c, HA_H2_ERR_RST_STREAM, "RST_STREAM (%s)%s", ha_h2_error_code_name(c->rst_code),
             c->headers_seen ? " after response headers" : "");
    } else if (c->goaway) {
        goaway_reason(c, "stream closed");
    } else {
        fail(c, HA_H2_ERR_PROTOCOL, "HTTP/2: stream closed (%s)", ha_h2_error_code_name(code));
    }
    return 0;
}

static ssize_t read_body(nghttp2_session *s, int32_t stream_id, uint8_t *buf, size_t length,
                         uint32_t *data_flags, nghttp2_data_source *src, void *ud)
{
    ha_h2_client *c = ud;
    (void)s;
    (void)stream_id;
    (void)src;
    size_t left = c->body_len - c->body_off;
    size_t n = left < length ? left : length;
    if (n > 0)
        memcpy(buf, c->body + c->body_off, n);
    c->body_off += n;
    if (c->body_off == c->body_len)
        *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

/* Sends whatever nghttp2 has queued, while the request is still open: once the verdict is in
 * (an answer, or the peer broke the protocol) the connection is closed, not talked to, so a
 * peer that already hung up cannot turn the verdict into a write error. */
static void flush(ha_h2_client *c)
{
    while (c->state == HA_H2_RUNNING) {
        const uint8_t *data;
        ssize_t n = nghttp2_session_mem_send(c->session, &data);
        if (n < 0) {
            fail(c, HA_H2_ERR_LOCAL, "HTTP/2: %s", nghttp2_strerror((int)n));
            return;
        }
        if (n == 0)
            return;
        if (c->cb->send(c->ud, (const char *)data, (size_t)n) != 0) {
            fail(c, HA_H2_ERR_LOCAL, "send failed");
            return;
        }
    }
}

/* After the peer has had its say: a session nghttp2 has terminated (it sent GOAWAY for a
 * connection error) cannot complete our request. */
static ha_h2_state settle(ha_h2_client *c)
{
    if (c->state == HA_H2_RUNNING && !nghttp2_session_want_read(c->session) &&
        !nghttp2_session_want_write(c->session)) {
        if (c->goaway)
            goaway_reason(c, "connection ended");
        else
            fail(c, HA_H2_ERR_PROTOCOL, "HTTP/2: session ended before the response");
    }
    return c->state;
}

int ha_h2_client_start(ha_h2_client *c, const ha_h2_callbacks *cb, void *ud,
                       const ha_h2_request *req)
{
    size_t max_input = c->max_input ? c->max_input : HA_H2_DEFAULT_MAX_INPUT;
    uint8_t *arena = c->arena.base;
    memset(c, 0, sizeof(*c));
    c->max_input = max_input;
    c->arena.base = arena;
    c->cb = cb;
    c->ud = ud;
    c->body = req->body;
    c->body_len = req->body_len;
    c->state = HA_H2_RUNNING;

    nghttp2_session_callbacks *cbs;
    if (nghttp2_session_callbacks_new(&cbs) != 0) {
        fail(c, HA_H2_ERR_LOCAL, "out of memory");
        return -1;
    }
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(cbs, on_invalid_frame);
    nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send);
    nghttp2_session_callbacks_set_error_callback2(cbs, on_error);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    nghttp2_option *opt;
    if (nghttp2_option_new(&opt) != 0) {
        nghttp2_session_callbacks_del(cbs);
        fail(c, HA_H2_ERR_LOCAL, "out of memory");
        return -1;
    }
    /* We never accept pushes; a peer that sends one anyway breaks the protocol. */
    nghttp2_option_set_max_reserved_remote_streams(opt, 0);
    /* Our few request fields are sent once per connection: indexing them would only cost. */
    nghttp2_option_set_max_deflate_dynamic_table_size(opt, 0);
    nghttp2_mem mem = {&c->arena, arena_malloc, arena_free, arena_calloc, arena_realloc};
    int rv = nghttp2_session_client_new3(&c->session, cbs, c, opt, &mem);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cbs);
    if (rv != 0) {
        c->session = NULL;
        fail(c, HA_H2_ERR_LOCAL, "HTTP/2: %s", nghttp2_strerror(rv));
        return -1;
    }

    const nghttp2_settings_entry settings[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, HA_H2_MAX_HEADER_BYTES},
    };
    rv = nghttp2_submit_settings(c->session, NGHTTP2_FLAG_NONE, settings,
                                 sizeof(settings) / sizeof(settings[0]));
    if (rv != 0) {
        fail(c, HA_H2_ERR_LOCAL, "HTTP/2: %s", nghttp2_strerror(rv));
        return -1;
    }

    enum { MAX_FIELDS = 4 + 32 };
    if (req->nfields > MAX_FIELDS - 4) {
        fail(c, HA_H2_ERR_LOCAL, "too many request header fields (%zu)", req->nfields);
        return -1;
    }
    nghttp2_nv nv[MAX_FIELDS];
    const char *pseudo[4][2] = {{":method", req->method},
                                {":scheme", req->scheme},
                                {":authority", req->authority},
                                {":path", req->path}};
    size_t n = 0;
    for (size_t i = 0; i < 4; i++, n++) {
        nv[n].name = (uint8_t *)(uintptr_t)pseudo[i][0];
        nv[n].namelen = strlen(pseudo[i][0]);
        nv[n].value = (uint8_t *)(uintptr_t)pseudo[i][1];
        nv[n].valuelen = strlen(pseudo[i][1]);
        nv[n].flags = NGHTTP2_NV_FLAG_NONE;
    }
    for (size_t i = 0; i < req->nfields; i++, n++) {
        nv[n].name = (uint8_t *)(uintptr_t)req->fields[i].name;
        nv[n].namelen = strlen(req->fields[i].name);
        nv[n].value = (uint8_t *)(uintptr_t)req->fields[i].value;
        nv[n].valuelen = strlen(req->fields[i].value);
        /* Values may be secrets: keep them out of the peer's HPACK dynamic table. */
        nv[n].flags = NGHTTP2_NV_FLAG_NO_INDEX;
    }
    nghttp2_data_provider body = {.source = {.ptr = NULL}, .read_callback = read_body};
    int32_t id = nghttp2_submit_request(c->session, NULL, nv, n, &body, c);
    if (id < 0) {
        fail(c, HA_H2_ERR_LOCAL, "HTTP/2: %s", nghttp2_strerror(id));
        return -1;
    }
    c->stream_id = id;
    flush(c);
    return c->state == HA_H2_FAILED ? -1 : 0;
}

ha_h2_state ha_h2_client_recv(ha_h2_client *c, const char *data, size_t len)
{
    if (c->state != HA_H2_RUNNING || !c->session)
        return c->state;
    if (len > c->max_input - c->input) {
        fail(c, HA_H2_ERR_TOO_BIG, "more than %zu bytes from the server", c->max_input);
        return c->state;
    }
    c->input += len;
    ssize_t rv = nghttp2_session_mem_recv(c->session, (const uint8_t *)data, len);
    if (rv < 0) {
        if (rv == NGHTTP2_ERR_NOMEM)
            fail(c, HA_H2_ERR_LOCAL, "out of memory");
        else
            fail(c, HA_H2_ERR_PROTOCOL, "HTTP/2: %s", nghttp2_strerror((int)rv));
        return c->state;
    }
    flush(c);
    return settle(c);
}

ha_h2_state ha_h2_client_eof(ha_h2_client *c)
{
    if (c->state != HA_H2_RUNNING)
        return c->state;
    if (c->goaway) {
        goaway_reason(c, "then the connection closed");
    } else if (c->input == 0) {
        fail(c, HA_H2_ERR_EOF, "connection closed before response");
    } else if (!c->headers_seen) {
        fail(c, HA_H2_ERR_EOF, "connection closed before response headers");
    } else {
        fail(c, HA_H2_ERR_EOF, "connection closed before end of response (HTTP %d)", c->status);
    }
    return c->state;
}

void ha_h2_client_close(ha_h2_client *c)
{
    if (c->session)
        nghttp2_session_del(c->session);
    c->session = NULL;
    c->arena.used = 0;
    c->arena.last = 0;
}
