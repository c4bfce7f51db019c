/* grpc_call.c - the gRPC health Check call: HTTP/2 events in, one verdict out.
 *
 * The order of judgement follows what a gRPC client does: the transport's own failures first
 * (GOAWAY, RST_STREAM, protocol errors, early close), then the HTTP layer (:status 200 and an
 * application/grpc content-type, else it is not a gRPC server answering), then grpc-status
 * (from the trailers, or from the headers of a trailers-only response), and only for status
 * OK the message itself. The message is deframed as DATA arrives so a malformed or oversized
 * one ends the call at once. Trade-off: only the fields we judge are kept (bounded copies of
 * grpc-status and grpc-message); other headers are seen once and dropped. */
#include "healthagg/grpc_call.h"
#include "healthagg/quote.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static void verdict(ha_grpc_call *g, bool ok, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void verdict(ha_grpc_call *g, bool ok, const char *fmt, ...)
{
    if (g->done)
        return;
    g->done = true;
    g->ok = ok;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g->reason, sizeof(g->reason), fmt, ap);
    va_end(ap);
}

/* A header value quoted for a reason: printable, valid UTF-8, at most ~40 bytes. */
static void quoted(const char *v, size_t len, char *out, size_t cap)
{
    out[0] = '"';
    size_t n = ha_quote(out + 1, cap - 2 < 44 ? cap - 2 : 44, v, len);
    out[1 + n] = '"';
    out[2 + n] = '\0';
}

static int send_cb(void *ud, const char *data, size_t len)
{
    ha_grpc_call *g = ud;
    return g->send(g->ud, data, len);
}

static int on_header(void *ud, ha_h2_block block, const char *name, size_t nlen, const char *value,
                     size_t vlen)
{
    ha_grpc_call *g = ud;
    (void)block; /* grpc-status counts in either block: trailers-only answers put it first */
    if (nlen == 12 && memcmp(name, "content-type", 12) == 0) {
        g->content_type_seen = true;
        /* "application/grpc", optionally followed by "+proto", "+json", ";..." */
        g->content_type_ok = vlen >= 16 && memcmp(value, "application/grpc", 16) == 0 &&
                             (vlen == 16 || value[16] == '+' || value[16] == ';');
        if (!g->content_type_ok) {
            char q[64];
            quoted(value, vlen, q, sizeof(q));
            ha_h2_client_fail(&g->h2, "invalid response: content-type %s, not gRPC", q);
            return -1;
        }
    } else if (nlen == 11 && memcmp(name, "grpc-status", 11) == 0) {
        g->grpc_status = ha_grpc_parse_status(value, vlen);
        if (g->grpc_status < 0) {
            g->grpc_status = -2;
            quoted(value, vlen, g->grpc_status_text, sizeof(g->grpc_status_text));
        }
    } else if (nlen == 12 && memcmp(name, "grpc-message", 12) == 0) {
        size_t n = vlen < HA_GRPC_MESSAGE_TEXT_MAX ? vlen : HA_GRPC_MESSAGE_TEXT_MAX;
        memcpy(g->grpc_message, value, n);
        g->grpc_message[n] = '\0';
        g->grpc_message_len = vlen; /* > n: cut */
    }
    return 0;
}

static int on_data(void *ud, const uint8_t *data, size_t len)
{
    ha_grpc_call *g = ud;
    char err[128];
    if (ha_grpc_deframe(&g->deframer, data, len, err, sizeof(err)) != 0) {
        ha_h2_client_fail(&g->h2, "invalid response: %s", err);
        return -1;
    }
    return 0;
}

static const ha_h2_callbacks h2_callbacks = {
    .send = send_cb,
    .on_header = on_header,
    .on_data = on_data,
};

/* The stream ended cleanly: judge headers, status and message. */
static void judge(ha_grpc_call *g)
{
    const ha_h2_client *h = &g->h2;
    if (h->status != 200) {
        verdict(g, false, "invalid response: HTTP status %d, not gRPC", h->status);
        return;
    }
    if (!g->content_type_seen) {
        verdict(g, false, "invalid response: no content-type, not gRPC");
        return;
    }
    if (g->grpc_status == -1) {
        verdict(g, false, "invalid response: no grpc-status");
        return;
    }
    if (g->grpc_status == -2) {
        verdict(g, false, "invalid response: grpc-status %s", g->grpc_status_text);
        return;
    }
    if (g->grpc_status != 0) {
        const char *name = ha_grpc_status_name(g->grpc_status);
        char code[48];
        if (name)
            snprintf(code, sizeof(code), "grpc-status %d (%s)", g->grpc_status, name);
        else
            snprintf(code, sizeof(code), "grpc-status %d", g->grpc_status);
        char msg[200];
        size_t n =
            ha_grpc_percent_decode(g->grpc_message, strlen(g->grpc_message), msg, sizeof(msg));
        bool marked = n >= 3 && memcmp(msg + n - 3, "...", 3) == 0;
        if (g->grpc_message_len > HA_GRPC_MESSAGE_TEXT_MAX && !marked && n + 4 <= sizeof(msg))
            memcpy(msg + n, "...", 4); /* the value was cut when it was stored */
        if (n > 0)
            verdict(g, false, "%s: %s", code, msg);
        else
            verdict(g, false, "%s", code);
        return;
    }
    const uint8_t *m;
    size_t mlen;
    char err[128];
    int st;
    if (ha_grpc_deframer_finish(&g->deframer, &m, &mlen, err, sizeof(err)) != 0 ||
        ha_grpc_decode_health_response(m, mlen, &st, err, sizeof(err)) != 0) {
        verdict(g, false, "invalid response: %s", err);
        return;
    }
    g->serving_status = st;
    const char *name = ha_grpc_health_status_name(st);
    if (st == HA_GRPC_HEALTH_SERVING)
        verdict(g, true, "%s", name);
    else if (name)
        verdict(g, false, "%s", name);
    else
        verdict(g, false, "serving status %d (not in grpc.health.v1)", st);
}

/* Turns the HTTP/2 client's state into the call's verdict, once it has one. */
static bool settle(ha_grpc_call *g, ha_h2_state st)
{
    if (g->done)
        return true;
    if (st == HA_H2_RUNNING)
        return false;
    if (st == HA_H2_DONE) {
        judge(g);
        return true;
    }
    const ha_h2_client *h = &g->h2;
    switch (h->error) {
    case HA_H2_ERR_PROTOCOL:
    case HA_H2_ERR_TOO_BIG:
        verdict(g, false, "invalid response: %s", h->reason);
        break;
    case HA_H2_ERR_LOCAL:
        g->local_error = true;
        verdict(g, false, "%s", h->reason);
        break;
    default: /* GOAWAY, RST_STREAM, EOF, and our callbacks' reasons: already complete */
        verdict(g, false, "%s", h->reason);
        break;
    }
    return true;
}

int ha_grpc_call_start(ha_grpc_call *g, const ha_grpc_call_params *prm)
{
    memset(g, 0, sizeof(*g));
    g->grpc_status = -1;
    g->serving_status = -1;
    g->send = prm->send;
    g->ud = prm->ud;
    ha_grpc_deframer_reset(&g->deframer);
    size_t slen = strlen(prm->service);
    g->request_len = ha_grpc_encode_request(prm->service, slen, g->request, sizeof(g->request));
    if (g->request_len == 0) {
        g->local_error = true;
        verdict(g, false, "service name longer than %d bytes", HA_GRPC_SERVICE_MAX);
        return -1;
    }
    enum { FIXED = 3, MAX_META = 32 };
    if (prm->nmetadata > MAX_META) {
        g->local_error = true;
        verdict(g, false, "more than %d metadata entries", MAX_META);
        return -1;
    }
    ha_h2_field fields[FIXED + MAX_META] = {
        {"content-type", "application/grpc"},
        {"te", "trailers"},
        {"user-agent", "healthagg/" HEALTHAGG_VERSION},
    };
    for (size_t i = 0; i < prm->nmetadata; i++)
        fields[FIXED + i] = prm->metadata[i];
    const ha_h2_request req = {
        .method = "POST",
        .scheme = prm->scheme ? prm->scheme : "http",
        .authority = prm->authority,
        .path = HA_GRPC_HEALTH_PATH,
        .fields = fields,
        .nfields = FIXED + prm->nmetadata,
        .body = g->request,
        .body_len = g->request_len,
    };
    g->h2.arena.base = prm->arena;
    if (ha_h2_client_start(&g->h2, &h2_callbacks, g, &req) != 0) {
        settle(g, g->h2.state);
        return -1;
    }
    return 0;
}

bool ha_grpc_call_recv(ha_grpc_call *g, const char *data, size_t len)
{
    if (g->done)
        return true;
    return settle(g, ha_h2_client_recv(&g->h2, data, len));
}

void ha_grpc_call_eof(ha_grpc_call *g)
{
    if (!g->done)
        settle(g, ha_h2_client_eof(&g->h2));
}

void ha_grpc_call_close(ha_grpc_call *g)
{
    ha_h2_client_close(&g->h2);
}
