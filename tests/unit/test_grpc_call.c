/* test_grpc_call.c - the health Check call from server bytes to verdict. Each case is the exact
 * byte stream a server sends (SETTINGS, HEADERS/CONTINUATION/DATA frames, HPACK blocks made
 * with nghttp2's own encoder), fed whole and byte by byte; the verdict and reason must be the
 * same both ways. The request the call sends is decoded with an nghttp2 server session.
 *
 * With HA_DUMP_SEEDS=DIR set, every case's server bytes are also written to DIR/<name> with the
 * fuzz_grpc control byte in front: that is how tests/fuzz/corpus/fuzz_grpc/ was made. */
#include "healthagg/grpc_call.h"
#include "unit.h"

#include <nghttp2/nghttp2.h>

#include <stdlib.h>

/* ---- building what a server sends ------------------------------------------------------ */

typedef struct wirebuf {
    uint8_t b[70000];
    size_t n;
} wirebuf;

static void frame(wirebuf *w, uint8_t type, uint8_t flags, uint32_t stream, const void *p,
                  size_t len)
{
    if (w->n + 9 + len > sizeof(w->b))
        abort();
    uint8_t *o = w->b + w->n;
    o[0] = (uint8_t)(len >> 16);
    o[1] = (uint8_t)(len >> 8);
    o[2] = (uint8_t)len;
    o[3] = type;
    o[4] = flags;
    o[5] = (uint8_t)(stream >> 24);
    o[6] = (uint8_t)(stream >> 16);
    o[7] = (uint8_t)(stream >> 8);
    o[8] = (uint8_t)stream;
    if (len)
        memcpy(o + 9, p, len);
    w->n += 9 + len;
}

static nghttp2_hd_deflater *deflater;

/* A HEADERS frame from "name: value" pairs (NULL-terminated list). */
static void headers(wirebuf *w, uint8_t flags, const char *const *kv)
{
    nghttp2_nv nv[16];
    size_t n = 0;
    for (; kv[2 * n]; n++) {
        nv[n].name = (uint8_t *)(uintptr_t)kv[2 * n];
        nv[n].namelen = strlen(kv[2 * n]);
        nv[n].value = (uint8_t *)(uintptr_t)kv[2 * n + 1];
        nv[n].valuelen = strlen(kv[2 * n + 1]);
        nv[n].flags = NGHTTP2_NV_FLAG_NONE;
    }
    uint8_t block[4096];
    ssize_t bl = nghttp2_hd_deflate_hd(deflater, block, sizeof(block), nv, n);
    if (bl < 0)
        abort();
    frame(w, NGHTTP2_HEADERS, (uint8_t)(flags | NGHTTP2_FLAG_END_HEADERS), 1, block, (size_t)bl);
}

static void settings(wirebuf *w)
{
    if (deflater)
        nghttp2_hd_deflate_del(deflater);
    if (nghttp2_hd_deflate_new(&deflater, 4096) != 0)
        abort();
    w->n = 0;
    frame(w, NGHTTP2_SETTINGS, 0, 0, NULL, 0);
    frame(w, NGHTTP2_SETTINGS, NGHTTP2_FLAG_ACK, 0, NULL, 0);
}

static const char *const H_OK[] = {":status", "200", "content-type", "application/grpc", NULL};
static const char *const T_OK[] = {"grpc-status", "0", NULL};

static void message(wirebuf *w, uint8_t flags, const uint8_t *m, size_t len)
{
    frame(w, NGHTTP2_DATA, flags, 1, m, len);
}

/* A whole normal answer: headers, one DATA with the framed message, trailers. */
static void answer(wirebuf *w, const uint8_t *msg, size_t len)
{
    settings(w);
    headers(w, 0, H_OK);
    message(w, 0, msg, len);
    headers(w, NGHTTP2_FLAG_END_STREAM, T_OK);
}

/* ---- running the call ------------------------------------------------------------------ */

static uint8_t sent[4096];
static size_t sent_len;

static int record_send(void *ud, const char *d, size_t n)
{
    (void)ud;
    if (n <= sizeof(sent) - sent_len) {
        memcpy(sent + sent_len, d, n);
        sent_len += n;
    }
    return 0;
}

static void start(ha_grpc_call *g, const char *service)
{
    static const ha_h2_field meta[] = {{"authorization", "Bearer t0k"}, {"x-env", "prod"}};
    const ha_grpc_call_params prm = {.authority = "127.0.0.1:50051",
                                     .service = service,
                                     .metadata = meta,
                                     .nmetadata = 2,
                                     .send = record_send,
                                     .ud = NULL};
    sent_len = 0;
    CHECK(ha_grpc_call_start(g, &prm) == 0);
}

static void dump_seed(const char *name, const wirebuf *w, uint8_t control)
{
    const char *dir = getenv("HA_DUMP_SEEDS");
    if (!dir)
        return;
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        exit(1);
    }
    fputc(control, f);
    fwrite(w->b, 1, w->n, f);
    fclose(f);
}

/* Feeds `w` (whole, then again byte by byte), then EOF if `eof`; checks ok and reason. */
static void expect(const char *name, const wirebuf *w, bool eof, bool ok, const char *reason)
{
    dump_seed(name, w, 0);
    for (int pass = 0; pass < 2; pass++) {
        static ha_grpc_call g;
        start(&g, "pkg.Svc");
        if (pass == 0) {
            ha_grpc_call_recv(&g, (const char *)w->b, w->n);
        } else {
            for (size_t i = 0; i < w->n && !g.done; i++)
                ha_grpc_call_recv(&g, (const char *)w->b + i, 1);
        }
        if (eof)
            ha_grpc_call_eof(&g);
        unit_checks++;
        if (!g.done || g.ok != ok || strcmp(g.reason, reason) != 0) {
            unit_failures++;
            fprintf(stderr, "%s (%s): done=%d ok=%d reason \"%s\"; want ok=%d \"%s\"\n", name,
                    pass ? "bytewise" : "whole", g.done, g.ok, g.reason, ok, reason);
        }
        ha_grpc_call_close(&g);
    }
}

/* ---- the request on the wire ----------------------------------------------------------- */

typedef struct req_seen {
    char fields[1024];
    uint8_t body[600];
    size_t body_len;
    bool end;
} req_seen;

static int rq_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags, void *ud)
{
    req_seen *r = ud;
    (void)s;
    (void)f;
    (void)flags;
    size_t l = strlen(r->fields);
    snprintf(r->fields + l, sizeof(r->fields) - l, "%.*s: %.*s\n", (int)namelen, name,
             (int)valuelen, value);
    return 0;
}

static int rq_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *d, size_t n,
                   void *ud)
{
    req_seen *r = ud;
    (void)s;
    (void)flags;
    (void)id;
    if (n <= sizeof(r->body) - r->body_len) {
        memcpy(r->body + r->body_len, d, n);
        r->body_len += n;
    }
    return 0;
}

static int rq_frame(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    req_seen *r = ud;
    (void)s;
    if (f->hd.stream_id == 1 && (f->hd.flags & NGHTTP2_FLAG_END_STREAM))
        r->end = true;
    return 0;
}

static void test_request(void)
{
    ha_grpc_call g;
    start(&g, "pkg.Svc");
    nghttp2_session_callbacks *cbs;
    nghttp2_session *srv;
    req_seen r;
    memset(&r, 0, sizeof(r));
    CHECK(nghttp2_session_callbacks_new(&cbs) == 0);
    nghttp2_session_callbacks_set_on_header_callback(cbs, rq_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, rq_data);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, rq_frame);
    CHECK(nghttp2_session_server_new(&srv, cbs, &r) == 0);
    CHECK(nghttp2_session_mem_recv(srv, sent, sent_len) == (ssize_t)sent_len);
    CHECK(r.end);
    CHECK_STR_CONTAINS(r.fields, ":method: POST\n:scheme: http\n:authority: 127.0.0.1:50051\n"
                                 ":path: /grpc.health.v1.Health/Check\n"
                                 "content-type: application/grpc\nte: trailers\n"
                                 "user-agent: healthagg/");
    CHECK_STR_CONTAINS(r.fields, "authorization: Bearer t0k\nx-env: prod\n");
    const uint8_t body[] = {0, 0, 0, 0, 9, 0x0a, 7, 'p', 'k', 'g', '.', 'S', 'v', 'c'};
    CHECK(r.body_len == sizeof(body) && memcmp(r.body, body, sizeof(body)) == 0);
    nghttp2_session_del(srv);
    nghttp2_session_callbacks_del(cbs);
    ha_grpc_call_close(&g);

    /* A service name over the limit never reaches the wire. */
    static char longname[HA_GRPC_SERVICE_MAX + 2];
    memset(longname, 's', sizeof(longname) - 1);
    const ha_grpc_call_params prm = {.authority = "a", .service = longname, .send = record_send};
    CHECK(ha_grpc_call_start(&g, &prm) == -1);
    CHECK(g.done && !g.ok && g.local_error);
    CHECK_STR_CONTAINS(g.reason, "service name longer than 512 bytes");
    ha_grpc_call_close(&g);
}

/* ---- verdicts -------------------------------------------------------------------------- */

static void test_verdicts(void)
{
    static wirebuf w;
    const uint8_t serving[] = {0, 0, 0, 0, 2, 0x08, 0x01};
    const uint8_t not_serving[] = {0, 0, 0, 0, 2, 0x08, 0x02};
    const uint8_t svc_unknown[] = {0, 0, 0, 0, 2, 0x08, 0x03};
    const uint8_t unknown[] = {0, 0, 0, 0, 0};
    const uint8_t seven[] = {0, 0, 0, 0, 2, 0x08, 0x07};

    answer(&w, serving, sizeof(serving));
    expect("serving", &w, false, true, "SERVING");
    answer(&w, not_serving, sizeof(not_serving));
    expect("not_serving", &w, false, false, "NOT_SERVING");
    answer(&w, svc_unknown, sizeof(svc_unknown));
    expect("service_unknown", &w, false, false, "SERVICE_UNKNOWN");
    answer(&w, unknown, sizeof(unknown));
    expect("unknown_empty_message", &w, false, false, "UNKNOWN");
    answer(&w, seven, sizeof(seven));
    expect("status_7", &w, false, false, "serving status 7 (not in grpc.health.v1)");

    /* The message split over DATA frames, with padding, and an empty DATA with END_STREAM
     * after trailers would be a protocol error: here the trailers end it. */
    settings(&w);
    headers(&w, 0, H_OK);
    message(&w, 0, serving, 3);
    uint8_t padded[1 + 4 + 10] = {10};
    memcpy(padded + 1, serving + 3, 4);
    frame(&w, NGHTTP2_DATA, NGHTTP2_FLAG_PADDED, 1, padded, sizeof(padded));
    headers(&w, NGHTTP2_FLAG_END_STREAM,
            (const char *const[]){"grpc-status", "0", "grpc-message", "", NULL});
    expect("serving_split_padded", &w, false, true, "SERVING");

    /* Trailers-only answers: what grpc-js sends for an unknown service, and with no health
     * service at all. */
    settings(&w);
    headers(&w, NGHTTP2_FLAG_END_STREAM,
            (const char *const[]){":status", "200", "content-type", "application/grpc+proto",
                                  "grpc-status", "5", "grpc-message",
                                  "Health%20status%20unknown%20for%20service%20x", NULL});
    expect("trailers_only_not_found", &w, false, false,
           "grpc-status 5 (NOT_FOUND): Health status unknown for service x");
    settings(&w);
    headers(&w, NGHTTP2_FLAG_END_STREAM,
            (const char *const[]){":status", "200", "content-type", "application/grpc",
                                  "grpc-status", "12", "grpc-message",
                                  "The server does not implement the method "
                                  "/grpc.health.v1.Health/Check",
                                  NULL});
    expect("unimplemented", &w, false, false,
           "grpc-status 12 (UNIMPLEMENTED): The server does not implement the method "
           "/grpc.health.v1.Health/Check");
    settings(&w);
    headers(&w, NGHTTP2_FLAG_END_STREAM,
            (const char *const[]){":status", "200", "content-type", "application/grpc",
                                  "grpc-status", "14", NULL});
    expect("unavailable_no_message", &w, false, false, "grpc-status 14 (UNAVAILABLE)");
    settings(&w);
    headers(&w, NGHTTP2_FLAG_END_STREAM,
            (const char *const[]){":status", "200", "content-type", "application/grpc",
                                  "grpc-status", "99", "grpc-message", "%E2%9C%97 bad%0Aline",
                                  NULL});
    expect("status_99_utf8", &w, false, false, "grpc-status 99: \xe2\x9c\x97 bad?line");
    /* A non-OK status in the trailers after a message: the status wins. */
    settings(&w);
    headers(&w, 0, H_OK);
    message(&w, 0, serving, sizeof(serving));
    headers(&w, NGHTTP2_FLAG_END_STREAM,
            (const char *const[]){"grpc-status", "13", "grpc-message", "boom", NULL});
    expect("internal_after_message", &w, false, false, "grpc-status 13 (INTERNAL): boom");
    /* A long grpc-message is cut with "...". */
    static char longmsg[3000];
    memset(longmsg, 'm', sizeof(longmsg) - 1);
    settings(&w);
    headers(&w, NGHTTP2_FLAG_END_STREAM,
            (const char *const[]){":status", "200", "content-type", "application/grpc",
                                  "grpc-status", "2", "grpc-message", longmsg, NULL});
    static ha_grpc_call g;
    start(&g, "");
    ha_grpc_call_recv(&g, (const char *)w.b, w.n);
    CHECK(g.done && !g.ok);
    CHECK(strncmp(g.reason, "grpc-status 2 (UNKNOWN): mmmm", 29) == 0);
    CHECK(strlen(g.reason) < sizeof(g.reason) && strstr(g.reason, "...") != NULL);
    ha_grpc_call_close(&g);
}

static void test_invalid(void)
{
    static wirebuf w;
    const uint8_t serving[] = {0, 0, 0, 0, 2, 0x08, 0x01};

    settings(&w);
    headers(&w, NGHTTP2_FLAG_END_STREAM,
            (const char *const[]){":status", "503", "content-type", "text/plain", NULL});
    expect("http_503_text", &w, false, false,
           "invalid response: content-type \"text/plain\", not gRPC");
    settings(&w);
    headers(&w, NGHTTP2_FLAG_END_STREAM, (const char *const[]){":status", "404", NULL});
    expect("http_404", &w, false, false, "invalid response: HTTP status 404, not gRPC");
    settings(&w);
    headers(&w, 0, (const char *const[]){":status", "200", NULL});
    message(&w, 0, serving, sizeof(serving));
    headers(&w, NGHTTP2_FLAG_END_STREAM, T_OK);
    expect("no_content_type", &w, false, false, "invalid response: no content-type, not gRPC");
    settings(&w);
    headers(&w, 0,
            (const char *const[]){":status", "200", "content-type", "application/grpcx", NULL});
    expect("content_type_grpcx", &w, false, false,
           "invalid response: content-type \"application/grpcx\", not gRPC");
    settings(&w);
    headers(&w, 0, H_OK);
    message(&w, NGHTTP2_FLAG_END_STREAM, serving, sizeof(serving));
    expect("no_trailers", &w, false, false, "invalid response: no grpc-status");
    settings(&w);
    headers(&w, 0, H_OK);
    message(&w, 0, serving, sizeof(serving));
    headers(&w, NGHTTP2_FLAG_END_STREAM, (const char *const[]){"grpc-status", "OK", NULL});
    expect("status_not_a_number", &w, false, false, "invalid response: grpc-status \"OK\"");
    settings(&w);
    headers(&w, 0, H_OK);
    headers(&w, NGHTTP2_FLAG_END_STREAM, T_OK);
    expect("ok_without_message", &w, false, false, "invalid response: no message in the response");
    const uint8_t two[] = {0, 0, 0, 0, 2, 0x08, 0x01, 0, 0, 0, 0, 2, 0x08, 0x01};
    answer(&w, two, sizeof(two));
    expect("two_messages", &w, false, false,
           "invalid response: more than one message in a unary response");
    const uint8_t compressed[] = {1, 0, 0, 0, 2, 0x08, 0x01};
    answer(&w, compressed, sizeof(compressed));
    expect("compressed", &w, false, false,
           "invalid response: compressed message (none was offered)");
    const uint8_t huge[] = {0, 0x7f, 0xff, 0xff, 0xff, 0x08};
    answer(&w, huge, sizeof(huge));
    expect("oversized_message", &w, false, false,
           "invalid response: message of 2147483647 bytes (limit 1024)");
    const uint8_t cut[] = {0, 0, 0, 0, 9, 0x08, 0x01};
    answer(&w, cut, sizeof(cut));
    expect("message_cut_short", &w, false, false,
           "invalid response: message cut short (2 of 9 bytes)");
    const uint8_t bad_proto[] = {0, 0, 0, 0, 2, 0x0a, 0x05};
    answer(&w, bad_proto, sizeof(bad_proto));
    expect("bad_protobuf", &w, false, false,
           "invalid response: HealthCheckResponse: field 1 overruns the message");

    /* Transport-level endings. */
    w.n = 0;
    expect("eof_at_once", &w, true, false, "connection closed before response");
    settings(&w);
    headers(&w, 0, H_OK);
    message(&w, 0, serving, sizeof(serving));
    expect("eof_before_trailers", &w, true, false,
           "connection closed before end of response (HTTP 200)");
    settings(&w);
    uint8_t rst[4] = {0, 0, 0, NGHTTP2_CANCEL};
    frame(&w, NGHTTP2_RST_STREAM, 0, 1, rst, 4);
    expect("rst_stream", &w, false, false, "RST_STREAM (CANCEL)");
    settings(&w);
    uint8_t ga[8 + 4] = {0, 0, 0, 0, 0, 0, 0, NGHTTP2_ENHANCE_YOUR_CALM, 'c', 'a', 'l', 'm'};
    frame(&w, NGHTTP2_GOAWAY, 0, 0, ga, sizeof(ga));
    expect("goaway", &w, false, false, "GOAWAY (ENHANCE_YOUR_CALM): request not processed, calm");
    w.n = 0;
    const char h1[] = "HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n";
    memcpy(w.b, h1, sizeof(h1) - 1);
    w.n = sizeof(h1) - 1;
    expect("http1_answer", &w, false, false,
           "invalid response: HTTP/2: Remote peer returned unexpected data while we expected "
           "SETTINGS frame.  Perhaps, peer does not support HTTP/2 properly.");
    /* Headers over the bound. */
    static char big[9000];
    memset(big, 'b', sizeof(big) - 1);
    settings(&w);
    nghttp2_nv nv[] = {{(uint8_t *)":status", (uint8_t *)"200", 7, 3, 0},
                       {(uint8_t *)"x-a", (uint8_t *)big, 3, sizeof(big) - 1, 0},
                       {(uint8_t *)"x-b", (uint8_t *)big, 3, sizeof(big) - 1, 0}};
    static uint8_t block[20000];
    ssize_t bl = nghttp2_hd_deflate_hd(deflater, block, sizeof(block), nv, 3);
    CHECK(bl > 0 && bl < 16384);
    frame(&w, NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS, 1, block, (size_t)bl);
    expect("headers_over_bound", &w, false, false,
           "invalid response: response header fields over 16384 bytes");
    /* More bytes than a health answer can need. */
    settings(&w);
    headers(&w, 0, H_OK);
    static uint8_t pad[256] = {199}; /* pad length: the frame carries no data */
    for (int i = 0; i < 300; i++)
        frame(&w, NGHTTP2_PING, 0, 0, pad, 8);
    for (int i = 0; w.n < 66000; i++)
        frame(&w, NGHTTP2_DATA, NGHTTP2_FLAG_PADDED, 1, pad, 200); /* padding only */
    expect("too_many_bytes", &w, false, false,
           "invalid response: more than 65536 bytes from the server");
}

int main(void)
{
    test_request();
    test_verdicts();
    test_invalid();
    nghttp2_hd_deflate_del(deflater);
    return unit_report("unit.grpc_call");
}
