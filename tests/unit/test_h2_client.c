/* test_h2_client.c - the byte-driven HTTP/2 client against a real HTTP/2 peer in memory: an
 * nghttp2 *server* session, so every frame the client sees is one a conforming server can send
 * (responses, trailers-only answers, 1xx, PING, RST_STREAM, GOAWAY). What a conforming server
 * cannot send (garbage, oversized header blocks) is built frame by frame. Checks the request
 * the server received (pseudo-headers, te: trailers, metadata, body) and the state and reason
 * the client ends in. */
#include "healthagg/h2_client.h"
#include "unit.h"

#include <nghttp2/nghttp2.h>

#include <stdarg.h>
#include <stdlib.h>

/* ---- the in-memory server -------------------------------------------------------------- */

typedef enum {
    SC_OK,            /* headers, one DATA, trailers */
    SC_TRAILERS_ONLY, /* one HEADERS with END_STREAM */
    SC_INTERIM,       /* 100, then OK */
    SC_RST,           /* RST_STREAM(REFUSED_STREAM) */
    SC_GOAWAY_NONE,   /* GOAWAY(last 0, ENHANCE_YOUR_CALM) */
    SC_GOAWAY_GRACE,  /* GOAWAY(last 1, NO_ERROR), then OK */
    SC_GOAWAY_ERROR,  /* GOAWAY(last 1, INTERNAL_ERROR), nothing more */
    SC_GOAWAY_CLOSE,  /* GOAWAY(last 1, NO_ERROR), nothing more */
    SC_PING_THEN_OK,  /* PING, then OK */
    SC_BIG_DATA,      /* 4000 bytes of DATA */
    SC_HEADERS_ONLY,  /* response headers, then nothing */
    SC_SILENT,        /* nothing at all (SETTINGS only) */
} scenario;

typedef struct server {
    nghttp2_session *s;
    scenario sc;
    char method[16], path[64], authority[64], te[16], ctype[32], meta[64];
    uint8_t body[64];
    size_t body_len;
    int32_t stream;
    bool request_done, ping_acked;
    const uint8_t *data; /* response DATA */
    size_t data_len, data_off;
} server;

typedef struct wire {
    uint8_t c2s[8192];
    size_t c2s_len;
} wire;

typedef struct seen {
    int headers, trailers;
    char status_hdr[8], grpc_status[8], grpc_message[64], trailer_status[8];
    uint8_t data[8192];
    size_t data_len;
    int reject_data; /* fail the request from on_data */
} seen;

static wire g_wire;
static seen g_seen;
static ha_h2_client *g_client;

static void copy_field(char *dst, size_t cap, const uint8_t *v, size_t n)
{
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, v, n);
    dst[n] = '\0';
}

static int srv_on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name,
                         size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                         void *ud)
{
    server *sv = ud;
    (void)s;
    (void)flags;
    sv->stream = f->hd.stream_id;
#define FIELD(n, dst)                                                                              \
    if (namelen == strlen(n) && memcmp(name, n, namelen) == 0)                                     \
    copy_field(sv->dst, sizeof(sv->dst), value, valuelen)
    FIELD(":method", method);
    FIELD(":path", path);
    FIELD(":authority", authority);
    FIELD("te", te);
    FIELD("content-type", ctype);
    FIELD("x-token", meta);
#undef FIELD
    return 0;
}

static int srv_on_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *d, size_t n,
                       void *ud)
{
    server *sv = ud;
    (void)s;
    (void)flags;
    (void)id;
    if (sv->body_len + n <= sizeof(sv->body)) {
        memcpy(sv->body + sv->body_len, d, n);
        sv->body_len += n;
    }
    return 0;
}

static ssize_t srv_read(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                        nghttp2_data_source *src, void *ud)
{
    server *sv = ud;
    (void)src;
    size_t n = sv->data_len - sv->data_off;
    if (n > len)
        n = len;
    memcpy(buf, sv->data + sv->data_off, n);
    sv->data_off += n;
    if (sv->data_off == sv->data_len) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        if (sv->sc != SC_BIG_DATA) {
            /* Trailers follow the data (submitted any earlier, they would overtake it). */
            nghttp2_nv trailers[] = {{(uint8_t *)"grpc-status", (uint8_t *)"0", 11, 1, 0}};
            *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
            CHECK(nghttp2_submit_trailer(s, id, trailers, 1) == 0);
        }
    }
    return (ssize_t)n;
}

#define NV(n, v)                                                                                   \
    {                                                                                              \
        (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, sizeof(v) - 1, NGHTTP2_NV_FLAG_NONE         \
    }

static void srv_respond_ok(server *sv)
{
    static const uint8_t msg[] = {0, 0, 0, 0, 2, 0x08, 0x01};
    static uint8_t big[4000];
    nghttp2_nv hdrs[] = {NV(":status", "200"), NV("content-type", "application/grpc")};
    nghttp2_data_provider dp = {.source = {.ptr = NULL}, .read_callback = srv_read};
    if (sv->sc == SC_BIG_DATA) {
        sv->data = big;
        sv->data_len = sizeof(big);
    } else {
        sv->data = msg;
        sv->data_len = sizeof(msg);
    }
    CHECK(nghttp2_submit_response(sv->s, sv->stream, hdrs, 2, &dp) == 0);
}

static int srv_on_frame(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    server *sv = ud;
    if (f->hd.type == NGHTTP2_PING && (f->hd.flags & NGHTTP2_FLAG_ACK))
        sv->ping_acked = true;
    if (!(f->hd.flags & NGHTTP2_FLAG_END_STREAM) || f->hd.stream_id == 0)
        return 0;
    /* The request is complete: act out the scenario. */
    sv->request_done = true;
    nghttp2_nv only[] = {NV(":status", "200"), NV("content-type", "application/grpc"),
                         NV("grpc-status", "5"),
                         NV("grpc-message", "Health%20status%20unknown%20for%20service%20x")};
    nghttp2_nv cont[] = {NV(":status", "100")};
    nghttp2_nv hdrs[] = {NV(":status", "200"), NV("content-type", "application/grpc")};
    switch (sv->sc) {
    case SC_OK:
    case SC_BIG_DATA:
        srv_respond_ok(sv);
        break;
    case SC_TRAILERS_ONLY:
        CHECK(nghttp2_submit_response(s, sv->stream, only, 4, NULL) == 0);
        break;
    case SC_INTERIM:
        CHECK(nghttp2_submit_headers(s, NGHTTP2_FLAG_NONE, sv->stream, NULL, cont, 1, NULL) >= 0);
        srv_respond_ok(sv);
        break;
    case SC_RST:
        CHECK(nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, sv->stream, NGHTTP2_REFUSED_STREAM) ==
              0);
        break;
    case SC_GOAWAY_NONE:
        CHECK(nghttp2_submit_goaway(s, NGHTTP2_FLAG_NONE, 0, NGHTTP2_ENHANCE_YOUR_CALM,
                                    (const uint8_t *)"too\nmany", 8) == 0);
        break;
    case SC_GOAWAY_GRACE:
        CHECK(nghttp2_submit_goaway(s, NGHTTP2_FLAG_NONE, sv->stream, NGHTTP2_NO_ERROR, NULL, 0) ==
              0);
        srv_respond_ok(sv);
        break;
    case SC_GOAWAY_ERROR:
        CHECK(nghttp2_submit_goaway(s, NGHTTP2_FLAG_NONE, sv->stream, NGHTTP2_INTERNAL_ERROR, NULL,
                                    0) == 0);
        break;
    case SC_GOAWAY_CLOSE:
        CHECK(nghttp2_submit_goaway(s, NGHTTP2_FLAG_NONE, sv->stream, NGHTTP2_NO_ERROR, NULL, 0) ==
              0);
        break;
    case SC_PING_THEN_OK:
        CHECK(nghttp2_submit_ping(s, NGHTTP2_FLAG_NONE, NULL) == 0);
        srv_respond_ok(sv);
        break;
    case SC_HEADERS_ONLY:
        CHECK(nghttp2_submit_headers(s, NGHTTP2_FLAG_NONE, sv->stream, NULL, hdrs, 2, NULL) >= 0);
        break;
    case SC_SILENT:
        break;
    }
    return 0;
}

static void server_init(server *sv, scenario sc)
{
    memset(sv, 0, sizeof(*sv));
    sv->sc = sc;
    nghttp2_session_callbacks *cbs;
    CHECK(nghttp2_session_callbacks_new(&cbs) == 0);
    nghttp2_session_callbacks_set_on_header_callback(cbs, srv_on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, srv_on_data);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, srv_on_frame);
    CHECK(nghttp2_session_server_new(&sv->s, cbs, sv) == 0);
    nghttp2_session_callbacks_del(cbs);
    CHECK(nghttp2_submit_settings(sv->s, NGHTTP2_FLAG_NONE, NULL, 0) == 0);
}

/* ---- the client side ------------------------------------------------------------------- */

static int cl_send(void *ud, const char *data, size_t len)
{
    wire *w = ud;
    if (len > sizeof(w->c2s) - w->c2s_len)
        return -1;
    memcpy(w->c2s + w->c2s_len, data, len);
    w->c2s_len += len;
    return 0;
}

static int cl_on_header(void *ud, ha_h2_block block, const char *name, size_t nlen,
                        const char *value, size_t vlen)
{
    (void)ud;
    CHECK(strlen(name) == nlen && strlen(value) == vlen);
    if (block == HA_H2_HEADERS) {
        g_seen.headers++;
        if (strcmp(name, ":status") == 0)
            copy_field(g_seen.status_hdr, sizeof(g_seen.status_hdr), (const uint8_t *)value, vlen);
        if (strcmp(name, "grpc-status") == 0)
            copy_field(g_seen.grpc_status, sizeof(g_seen.grpc_status), (const uint8_t *)value,
                       vlen);
        if (strcmp(name, "grpc-message") == 0)
            copy_field(g_seen.grpc_message, sizeof(g_seen.grpc_message), (const uint8_t *)value,
                       vlen);
    } else {
        g_seen.trailers++;
        if (strcmp(name, "grpc-status") == 0)
            copy_field(g_seen.trailer_status, sizeof(g_seen.trailer_status), (const uint8_t *)value,
                       vlen);
    }
    return 0;
}

static int cl_on_data(void *ud, const uint8_t *data, size_t len)
{
    (void)ud;
    if (g_seen.reject_data) {
        ha_h2_client_fail(g_client, "invalid response: %zu bytes I did not want", len);
        return -1;
    }
    if (len <= sizeof(g_seen.data) - g_seen.data_len) {
        memcpy(g_seen.data + g_seen.data_len, data, len);
        g_seen.data_len += len;
    }
    return 0;
}

static const ha_h2_callbacks callbacks = {cl_send, cl_on_header, cl_on_data};
static const uint8_t req_body[] = {0, 0, 0, 0, 9, 0x0a, 7, 'p', 'k', 'g', '.', 'S', 'v', 'c'};

static uint8_t *g_arena; /* when set, clients allocate from it */

static int start_client(ha_h2_client *c, size_t max_input)
{
    memset(&g_wire, 0, sizeof(g_wire));
    memset(&g_seen, 0, sizeof(g_seen));
    memset(c, 0, sizeof(*c));
    c->max_input = max_input;
    c->arena.base = g_arena;
    g_client = c;
    const ha_h2_field fields[] = {
        {"content-type", "application/grpc"}, {"te", "trailers"}, {"x-token", "s3cret"}};
    const ha_h2_request req = {.method = "POST",
                               .scheme = "http",
                               .authority = "127.0.0.1:50051",
                               .path = "/grpc.health.v1.Health/Check",
                               .fields = fields,
                               .nfields = 3,
                               .body = req_body,
                               .body_len = sizeof(req_body)};
    return ha_h2_client_start(c, &callbacks, &g_wire, &req);
}

/* Moves bytes both ways until nobody has anything to say; server bytes reach the client in
 * chunks of `step`. Returns the client's state. */
static ha_h2_state pump(server *sv, ha_h2_client *c, size_t step)
{
    for (int round = 0; round < 100; round++) {
        bool moved = false;
        if (g_wire.c2s_len > 0) {
            CHECK(nghttp2_session_mem_recv(sv->s, g_wire.c2s, g_wire.c2s_len) ==
                  (ssize_t)g_wire.c2s_len);
            g_wire.c2s_len = 0;
            moved = true;
        }
        const uint8_t *out;
        ssize_t n;
        while ((n = nghttp2_session_mem_send(sv->s, &out)) > 0) {
            moved = true;
            for (ssize_t i = 0; i < n && c->state == HA_H2_RUNNING; i += (ssize_t)step) {
                size_t k = (size_t)(n - i) < step ? (size_t)(n - i) : step;
                ha_h2_client_recv(c, (const char *)out + i, k);
            }
        }
        if (!moved || c->state != HA_H2_RUNNING)
            break;
    }
    return c->state;
}

static void run(scenario sc, size_t step, size_t max_input, server *sv, ha_h2_client *c)
{
    server_init(sv, sc);
    CHECK(start_client(c, max_input) == 0);
    pump(sv, c, step);
}

static void done_server(server *sv)
{
    nghttp2_session_del(sv->s);
}

/* ---- tests ----------------------------------------------------------------------------- */

static void test_ok(size_t step)
{
    server sv;
    ha_h2_client c;
    run(SC_OK, step, 0, &sv, &c);
    CHECK(c.state == HA_H2_DONE);
    CHECK(c.error == HA_H2_ERR_NONE);
    CHECK(c.status == 200);
    /* What the server received. */
    CHECK(sv.request_done);
    CHECK(strcmp(sv.method, "POST") == 0);
    CHECK(strcmp(sv.path, "/grpc.health.v1.Health/Check") == 0);
    CHECK(strcmp(sv.authority, "127.0.0.1:50051") == 0);
    CHECK(strcmp(sv.te, "trailers") == 0);
    CHECK(strcmp(sv.ctype, "application/grpc") == 0);
    CHECK(strcmp(sv.meta, "s3cret") == 0);
    CHECK(sv.body_len == sizeof(req_body) && memcmp(sv.body, req_body, sizeof(req_body)) == 0);
    /* What the client reported. */
    CHECK(g_seen.headers == 2 && strcmp(g_seen.status_hdr, "200") == 0);
    CHECK(g_seen.trailers == 1 && strcmp(g_seen.trailer_status, "0") == 0);
    CHECK(g_seen.data_len == 7 && g_seen.data[4] == 2 && g_seen.data[6] == 1);
    /* Late bytes and EOF change nothing once done. */
    CHECK(ha_h2_client_recv(&c, "garbage", 7) == HA_H2_DONE);
    CHECK(ha_h2_client_eof(&c) == HA_H2_DONE);
    ha_h2_client_close(&c);
    ha_h2_client_close(&c); /* idempotent */
    done_server(&sv);
}

static void test_trailers_only(void)
{
    server sv;
    ha_h2_client c;
    run(SC_TRAILERS_ONLY, 1000, 0, &sv, &c);
    CHECK(c.state == HA_H2_DONE);
    CHECK(g_seen.headers == 4 && g_seen.trailers == 0 && g_seen.data_len == 0);
    CHECK(strcmp(g_seen.grpc_status, "5") == 0);
    CHECK(strcmp(g_seen.grpc_message, "Health%20status%20unknown%20for%20service%20x") == 0);
    ha_h2_client_close(&c);
    done_server(&sv);
}

static void test_interim(void)
{
    server sv;
    ha_h2_client c;
    run(SC_INTERIM, 1000, 0, &sv, &c);
    CHECK(c.state == HA_H2_DONE && c.status == 200);
    CHECK(g_seen.headers == 2 && strcmp(g_seen.status_hdr, "200") == 0); /* 100 not reported */
    CHECK(g_seen.trailers == 1);
    ha_h2_client_close(&c);
    done_server(&sv);
}

static void test_ping(void)
{
    server sv;
    ha_h2_client c;
    run(SC_PING_THEN_OK, 1000, 0, &sv, &c);
    CHECK(c.state == HA_H2_DONE);
    pump(&sv, &c, 1000); /* deliver the client's last bytes (the PING ACK) */
    CHECK(nghttp2_session_mem_recv(sv.s, g_wire.c2s, g_wire.c2s_len) == (ssize_t)g_wire.c2s_len);
    CHECK(sv.ping_acked);
    ha_h2_client_close(&c);
    done_server(&sv);
}

static void test_rst(void)
{
    server sv;
    ha_h2_client c;
    run(SC_RST, 1000, 0, &sv, &c);
    CHECK(c.state == HA_H2_FAILED && c.error == HA_H2_ERR_RST_STREAM);
    CHECK(strcmp(c.reason, "RST_STREAM (REFUSED_STREAM)") == 0);
    ha_h2_client_close(&c);
    done_server(&sv);
}

static void test_goaway(void)
{
    server sv;
    ha_h2_client c;
    run(SC_GOAWAY_NONE, 1000, 0, &sv, &c);
    CHECK(c.state == HA_H2_FAILED && c.error == HA_H2_ERR_GOAWAY);
    CHECK(strcmp(c.reason, "GOAWAY (ENHANCE_YOUR_CALM): request not processed, too?many") == 0);
    ha_h2_client_close(&c);
    done_server(&sv);

    /* Graceful: the request below last_stream_id still completes. */
    run(SC_GOAWAY_GRACE, 1000, 0, &sv, &c);
    CHECK(c.state == HA_H2_DONE && c.goaway && c.goaway_code == NGHTTP2_NO_ERROR);
    ha_h2_client_close(&c);
    done_server(&sv);

    /* An error GOAWAY ends the request even when it covers our stream: the peer is tearing the
     * connection down. */
    run(SC_GOAWAY_ERROR, 1000, 0, &sv, &c);
    CHECK(c.state == HA_H2_FAILED && c.error == HA_H2_ERR_GOAWAY);
    CHECK(strcmp(c.reason, "GOAWAY (INTERNAL_ERROR)") == 0);
    ha_h2_client_close(&c);
    done_server(&sv);

    /* A graceful GOAWAY, then the connection closes without the answer. */
    run(SC_GOAWAY_CLOSE, 1000, 0, &sv, &c);
    CHECK(c.state == HA_H2_RUNNING && c.goaway);
    CHECK(ha_h2_client_eof(&c) == HA_H2_FAILED && c.error == HA_H2_ERR_GOAWAY);
    CHECK(strcmp(c.reason, "GOAWAY (NO_ERROR): then the connection closed") == 0);
    ha_h2_client_close(&c);
    done_server(&sv);
}

static void test_eof(void)
{
    server sv;
    ha_h2_client c;
    /* Nothing at all. */
    memset(&c, 0, sizeof(c));
    CHECK(start_client(&c, 0) == 0);
    CHECK(g_wire.c2s_len > 24 && memcmp(g_wire.c2s, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 24) == 0);
    CHECK(ha_h2_client_eof(&c) == HA_H2_FAILED && c.error == HA_H2_ERR_EOF);
    CHECK(strcmp(c.reason, "connection closed before response") == 0);
    ha_h2_client_close(&c);
    /* SETTINGS only. */
    run(SC_SILENT, 1000, 0, &sv, &c);
    CHECK(c.state == HA_H2_RUNNING);
    CHECK(ha_h2_client_eof(&c) == HA_H2_FAILED);
    CHECK(strcmp(c.reason, "connection closed before response headers") == 0);
    ha_h2_client_close(&c);
    done_server(&sv);
    /* Headers, then the end. */
    run(SC_HEADERS_ONLY, 1000, 0, &sv, &c);
    CHECK(c.state == HA_H2_RUNNING && c.status == 200);
    CHECK(ha_h2_client_eof(&c) == HA_H2_FAILED);
    CHECK(strcmp(c.reason, "connection closed before end of response (HTTP 200)") == 0);
    ha_h2_client_close(&c);
    done_server(&sv);
}

static void test_limits(void)
{
    server sv;
    ha_h2_client c;
    run(SC_BIG_DATA, 1000, 2000, &sv, &c);
    CHECK(c.state == HA_H2_FAILED && c.error == HA_H2_ERR_TOO_BIG);
    CHECK(strcmp(c.reason, "more than 2000 bytes from the server") == 0);
    ha_h2_client_close(&c);
    done_server(&sv);
    /* Within the default bound it passes. */
    run(SC_BIG_DATA, 1000, 0, &sv, &c);
    CHECK(c.state == HA_H2_DONE && g_seen.data_len == 4000);
    ha_h2_client_close(&c);
    done_server(&sv);
    /* A callback ends the request with its own reason. */
    server_init(&sv, SC_OK);
    CHECK(start_client(&c, 0) == 0);
    g_seen.reject_data = 1;
    pump(&sv, &c, 1000);
    CHECK(c.state == HA_H2_FAILED && c.error == HA_H2_ERR_CALLER);
    CHECK(strcmp(c.reason, "invalid response: 7 bytes I did not want") == 0);
    ha_h2_client_close(&c);
    done_server(&sv);
}

/* ---- frames a conforming server would never send --------------------------------------- */

static size_t frame(uint8_t *out, uint8_t type, uint8_t flags, uint32_t stream, const void *payload,
                    size_t len)
{
    out[0] = (uint8_t)(len >> 16);
    out[1] = (uint8_t)(len >> 8);
    out[2] = (uint8_t)len;
    out[3] = type;
    out[4] = flags;
    out[5] = (uint8_t)(stream >> 24);
    out[6] = (uint8_t)(stream >> 16);
    out[7] = (uint8_t)(stream >> 8);
    out[8] = (uint8_t)stream;
    if (len)
        memcpy(out + 9, payload, len);
    return 9 + len;
}

static void test_hostile(void)
{
    ha_h2_client c;
    /* An HTTP/1.1 server. */
    CHECK(start_client(&c, 0) == 0);
    const char *h1 = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
    CHECK(ha_h2_client_recv(&c, h1, strlen(h1)) == HA_H2_FAILED);
    CHECK(c.error == HA_H2_ERR_PROTOCOL);
    CHECK_STR_CONTAINS(c.reason, "HTTP/2: Remote peer returned unexpected data");
    ha_h2_client_close(&c);

    /* SETTINGS, then a header block (literal, never indexed) larger than our bound. */
    static uint8_t buf[60000];
    size_t n = frame(buf, NGHTTP2_SETTINGS, 0, 0, NULL, 0);
    nghttp2_hd_deflater *def;
    CHECK(nghttp2_hd_deflate_new(&def, 4096) == 0);
    static char big[12000];
    memset(big, 'v', sizeof(big));
    nghttp2_nv nv[] = {NV(":status", "200"),
                       {(uint8_t *)"x-a", (uint8_t *)big, 3, sizeof(big), NGHTTP2_NV_FLAG_NONE},
                       {(uint8_t *)"x-b", (uint8_t *)big, 3, sizeof(big), NGHTTP2_NV_FLAG_NONE}};
    static uint8_t block[30000];
    ssize_t bl = nghttp2_hd_deflate_hd(def, block, sizeof(block), nv, 3);
    CHECK(bl > 17000);
    nghttp2_hd_deflate_del(def);
    n += frame(buf + n, NGHTTP2_HEADERS, 0, 1, block, 16000);
    n += frame(buf + n, NGHTTP2_CONTINUATION, NGHTTP2_FLAG_END_HEADERS, 1, block + 16000,
               (size_t)bl - 16000);
    CHECK(start_client(&c, 0) == 0);
    ha_h2_client_recv(&c, (const char *)buf, n);
    CHECK(c.state == HA_H2_FAILED && c.error == HA_H2_ERR_TOO_BIG);
    CHECK(strcmp(c.reason, "response header fields over 16384 bytes") == 0);
    ha_h2_client_close(&c);

    /* DATA on a stream we never opened, after a good SETTINGS: a connection error. */
    n = frame(buf, NGHTTP2_SETTINGS, 0, 0, NULL, 0);
    n += frame(buf + n, NGHTTP2_DATA, 0, 2, "xx", 2);
    CHECK(start_client(&c, 0) == 0);
    ha_h2_client_recv(&c, (const char *)buf, n);
    CHECK(c.state == HA_H2_FAILED && c.error == HA_H2_ERR_PROTOCOL);
    CHECK(strcmp(c.reason, "HTTP/2: DATA: stream in idle (PROTOCOL_ERROR)") == 0);
    ha_h2_client_close(&c);

    /* A frame bigger than SETTINGS_MAX_FRAME_SIZE allows. */
    n = frame(buf, NGHTTP2_SETTINGS, 0, 0, NULL, 0);
    n += frame(buf + n, NGHTTP2_DATA, 0, 1, block, 20000);
    CHECK(start_client(&c, 0) == 0);
    ha_h2_client_recv(&c, (const char *)buf, n);
    CHECK(c.state == HA_H2_FAILED && c.error == HA_H2_ERR_PROTOCOL);
    CHECK_STR_CONTAINS(c.reason, "FRAME_SIZE_ERROR");
    ha_h2_client_close(&c);

    /* A PING flood while we cannot send the answers: nghttp2's flood guard ends it. */
    n = frame(buf, NGHTTP2_SETTINGS, 0, 0, NULL, 0);
    for (int i = 0; i < 3000 && n + 17 <= sizeof(buf); i++)
        n += frame(buf + n, NGHTTP2_PING, 0, 0, "12345678", 8);
    CHECK(start_client(&c, 0) == 0);
    ha_h2_client_recv(&c, (const char *)buf, n);
    CHECK(c.state == HA_H2_FAILED);
    CHECK_STR_CONTAINS(c.reason, "Flooding was detected");
    ha_h2_client_close(&c);
}

/* The same exchanges with nghttp2's memory in the arena: nothing falls back to malloc, and the
 * arena is empty again after each request. */
static void test_arena(void)
{
    static uint8_t arena[HA_H2_ARENA_BYTES];
    g_arena = arena;
    server sv;
    ha_h2_client c;
    for (int i = 0; i < 3; i++) {
        run(i == 2 ? SC_TRAILERS_ONLY : SC_OK, i == 1 ? 1 : 1000, 0, &sv, &c);
        CHECK(c.state == HA_H2_DONE);
        CHECK(c.arena.fallbacks == 0);
        CHECK(c.arena.used > 0 && c.arena.used <= HA_H2_ARENA_BYTES);
        ha_h2_client_close(&c);
        CHECK(c.arena.used == 0);
        done_server(&sv);
    }
    run(SC_GOAWAY_NONE, 1000, 0, &sv, &c);
    CHECK(c.state == HA_H2_FAILED && c.arena.fallbacks == 0);
    ha_h2_client_close(&c);
    done_server(&sv);
    g_arena = NULL;
}

int main(void)
{
    test_arena();
    test_ok(100000);
    test_ok(1); /* byte by byte */
    test_ok(7);
    test_trailers_only();
    test_interim();
    test_ping();
    test_rst();
    test_goaway();
    test_eof();
    test_limits();
    test_hostile();
    return unit_report("unit.h2_client");
}
