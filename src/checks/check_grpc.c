/* check_grpc.c - grpc:// checks: one grpc.health.v1.Health/Check call per probe, passing on
 * SERVING.
 *
 * This file is only the glue between the probe engine and the gRPC call (grpc_call.c, which
 * holds HTTP/2 via nghttp2 and the message codec): the check's keys (`service` or the URL path,
 * `metadata`, `authority`), and per attempt a fresh HTTP/2 session over whatever the row's
 * transport provides - so grpcs:// is the same type over TLS. Trade-off: a new connection and
 * session per probe (a few KiB allocated by nghttp2, freed at the verdict) rather than a kept
 * connection: a health check must prove that the server still accepts and answers, and the
 * probe engine's model is one connection per attempt. */
#include "healthagg/check.h"
#include "healthagg/grpc_call.h"
#include "healthagg/secrets.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct grpc_cfg {
    char service[HA_GRPC_SERVICE_MAX + 1];
    char authority[HA_HOST_MAX + 16];
    ha_secret_map metadata;                  /* as configured, values expanded and secret */
    ha_h2_field fields[HA_SECRET_MAX_ITEMS]; /* what goes on the wire: lower-case names */
    char names[HA_SECRET_MAX_ITEMS][HA_SECRET_NAME_MAX + 1];
} grpc_cfg;

typedef struct grpc_state {
    ha_grpc_call call;
    uint8_t arena[HA_H2_ARENA_BYTES]; /* nghttp2's memory for one attempt, reused */
    ha_probe *probe;
    bool started;
} grpc_state;

static const char *const grpc_keys[] = {"service", "metadata", "authority", NULL};

static int grpc_check_url(const ha_check_config *c, char *err, size_t errlen)
{
    const char *path = c->url.path;
    if (c->url.has_path && (strchr(path, '?') || strchr(path + 1, '/'))) {
        snprintf(err, errlen,
                 "a %s:// URL's path is the service name, e.g. %s://127.0.0.1:50051/pkg.Svc "
                 "(no query, no further \"/\")",
                 c->url.scheme, c->url.scheme);
        return -1;
    }
    if (c->url.has_path && strlen(path + 1) > HA_GRPC_SERVICE_MAX) {
        snprintf(err, errlen, "service name longer than %d bytes", HA_GRPC_SERVICE_MAX);
        return -1;
    }
    return 0;
}

/* Printable ASCII without spaces: what a service name or an authority may hold. */
static bool printable_token(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
            return false;
    return true;
}

/* gRPC metadata keys: letters, digits, '-', '_', '.' (sent lower-case; they are
 * case-insensitive), and none that healthagg, HTTP/2 or gRPC itself sets. */
static bool metadata_name_ok(const char *name, char *why, size_t whylen)
{
    static const char *const reserved[] = {
        "content-type", "te",         "user-agent",       "host",
        "connection",   "keep-alive", "proxy-connection", "transfer-encoding",
        "upgrade",      NULL};
    size_t n = strlen(name);
    if (n == 0 || n > HA_SECRET_NAME_MAX) {
        snprintf(why, whylen, "a metadata name has 1 to %d characters", HA_SECRET_NAME_MAX);
        return false;
    }
    for (const char *c = name; *c; c++)
        if (!(isalnum((unsigned char)*c) || *c == '-' || *c == '_' || *c == '.')) {
            snprintf(why, whylen,
                     "not a valid metadata name (letters, digits, \"-\", \"_\", \".\")");
            return false;
        }
    for (size_t i = 0; reserved[i]; i++)
        if (strcasecmp(name, reserved[i]) == 0) {
            snprintf(why, whylen, "reserved: healthagg or HTTP/2 sets this header");
            return false;
        }
    if (strncasecmp(name, "grpc-", 5) == 0) {
        snprintf(why, whylen, "reserved: gRPC keeps \"grpc-*\" names for itself");
        return false;
    }
    return true;
}

static void grpc_free_cfg(void *cfg)
{
    grpc_cfg *g = cfg;
    ha_secret_map_free(&g->metadata);
}

static int parse_metadata(grpc_cfg *g, const ha_key_source *src)
{
    char path[160];
    const cJSON *obj = ha_key_find(src, "metadata", path, sizeof(path));
    if (!obj)
        return 0;
    if (ha_secret_map_parse(obj, path, metadata_name_ok, &g->metadata, src->err, src->errlen) != 0)
        return -1;
    for (size_t i = 0; i < g->metadata.n; i++) {
        const ha_secret_pair *m = &g->metadata.items[i];
        size_t k = 0;
        for (; m->name[k] && k < HA_SECRET_NAME_MAX; k++)
            g->names[i][k] = (char)tolower((unsigned char)m->name[k]);
        g->names[i][k] = '\0';
        g->fields[i].name = g->names[i];
        g->fields[i].value = m->value;
    }
    return 0;
}

static int grpc_parse(ha_check_config *c, const ha_key_source *src)
{
    grpc_cfg *g = c->type_cfg;
    char path[160];
    int rc = ha_key_string(src, "service", g->service, sizeof(g->service));
    if (rc < 0)
        return -1;
    if (rc == 0) {
        ha_key_find(src, "service", path, sizeof(path));
        if (c->url.has_path && strcmp(c->url.path + 1, g->service) != 0)
            return ha_key_error(src,
                                "%s: the URL already names the service \"%.60s\"; give it in "
                                "one place",
                                path, c->url.path + 1);
        if (!printable_token(g->service))
            return ha_key_error(src, "%s: spaces and control characters are not allowed", path);
    } else if (c->url.has_path) {
        snprintf(g->service, sizeof(g->service), "%s", c->url.path + 1);
    }
    rc = ha_key_string(src, "authority", g->authority, sizeof(g->authority));
    if (rc < 0)
        return -1;
    if (rc == 0) {
        ha_key_find(src, "authority", path, sizeof(path));
        if (!g->authority[0] || !printable_token(g->authority))
            return ha_key_error(src, "%s: give HOST or HOST:PORT, without spaces", path);
    } else {
        ha_format_hostport(c->url.host, c->url.host_is_ipv6, c->url.port, g->authority,
                           sizeof(g->authority));
    }
    return parse_metadata(g, src);
}

static void grpc_describe(const ha_check_config *c, cJSON *out)
{
    const grpc_cfg *g = c->type_cfg;
    cJSON_AddStringToObject(out, "service", g->service);
    cJSON_AddStringToObject(out, "authority", g->authority);
    ha_secret_map_describe(&g->metadata, "metadata", out);
}

static int grpc_send(void *ud, const char *data, size_t len)
{
    ha_probe *p = ud;
    ha_probe_send(p, data, len);
    return p->running ? 0 : -1; /* a failed send has finished the attempt already */
}

/* The verdict, once the call has one. The HTTP/2 session is released first: nothing of the
 * attempt is kept past its verdict. */
static void conclude(ha_probe *p, grpc_state *s)
{
    ha_grpc_call *g = &s->call;
    if (!g->done)
        return;
    bool ok = g->ok, complete = g->h2.state == HA_H2_DONE, eof = g->h2.error == HA_H2_ERR_EOF;
    bool local = g->local_error;
    char reason[sizeof(g->reason)];
    memcpy(reason, g->reason, sizeof(reason));
    /* A server may echo what it was sent (an interceptor's "bad token: ..."): never a secret. */
    ha_secret_scrub(&((const grpc_cfg *)p->cfg->type_cfg)->metadata, reason, sizeof(reason));
    ha_grpc_call_close(g);
    s->started = false;
    if (!p->running)
        return; /* the engine ended the attempt already (a failed send) */
    p->inconclusive = local;
    p->close_reset = complete; /* a complete answer: close with RST, no TIME_WAIT */
    if (eof)
        ha_probe_finish(p, ok, 0, "%s (%s)", reason, p->target);
    else
        ha_probe_finish(p, ok, 0, "%s", reason);
}

static void grpc_reset(ha_probe *p)
{
    grpc_state *s = p->type_state;
    if (s->started)
        ha_grpc_call_close(&s->call);
    s->started = false;
}

static void grpc_on_connected(ha_probe *p)
{
    grpc_state *s = p->type_state;
    const grpc_cfg *g = p->cfg->type_cfg;
    const ha_grpc_call_params prm = {
        .scheme = p->transport && strcmp(p->transport->name, "tls") == 0 ? "https" : "http",
        .authority = g->authority,
        .service = g->service,
        .metadata = g->fields,
        .nmetadata = g->metadata.n,
        .arena = s->arena,
        .send = grpc_send,
        .ud = p,
    };
    s->started = true;
    ha_grpc_call_start(&s->call, &prm);
    conclude(p, s);
}

static void grpc_on_data(ha_probe *p, const char *data, size_t len)
{
    grpc_state *s = p->type_state;
    if (!s->started)
        return;
    ha_grpc_call_recv(&s->call, data, len);
    /* The server's SETTINGS and window updates are not an answer: until response headers
     * arrive, a deadline reports "waiting for response". */
    if (s->started && !s->call.h2.headers_seen)
        p->phase = HA_PHASE_WAITING;
    conclude(p, s);
}

static void grpc_on_eof(ha_probe *p)
{
    grpc_state *s = p->type_state;
    if (!s->started)
        return;
    ha_grpc_call_eof(&s->call);
    conclude(p, s);
}

static void grpc_free(ha_probe *p)
{
    grpc_reset(p);
}

const ha_check_type ha_check_grpc = {
    .name = "grpc",
    .keys = grpc_keys,
    .cfg_size = sizeof(grpc_cfg),
    .state_size = sizeof(grpc_state),
    .check_url = grpc_check_url,
    .parse = grpc_parse,
    .free_cfg = grpc_free_cfg,
    .describe = grpc_describe,
    .reset = grpc_reset,
    .on_connected = grpc_on_connected,
    .on_data = grpc_on_data,
    .on_eof = grpc_on_eof,
    .free = grpc_free,
};
