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
#include "healthagg/expand.h"
#include "healthagg/grpc_call.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GRPC_META_MAX 32
#define GRPC_META_NAME_MAX 128
#define GRPC_META_VALUE_MAX 4096

typedef struct grpc_cfg {
    char service[HA_GRPC_SERVICE_MAX + 1];
    char authority[HA_HOST_MAX + 16];
    ha_h2_field metadata[GRPC_META_MAX]; /* names and values point into `store` */
    size_t nmetadata;
    char *store; /* owned */
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

/* HTTP/2 header names: lower-case token characters. Upper case is folded (gRPC metadata keys
 * are case-insensitive); anything else is an error. */
static bool metadata_name_ok(char *name)
{
    if (!*name)
        return false;
    for (char *c = name; *c; c++) {
        *c = (char)tolower((unsigned char)*c);
        if (!(islower((unsigned char)*c) || isdigit((unsigned char)*c) || strchr("-_.", *c)))
            return false;
    }
    return true;
}

/* Names healthagg sets itself, or that HTTP/2 forbids, or that gRPC reserves. */
static bool metadata_name_reserved(const char *name)
{
    static const char *const reserved[] = {
        "content-type", "te",         "user-agent",       "host",
        "connection",   "keep-alive", "proxy-connection", "transfer-encoding",
        "upgrade",      NULL};
    for (size_t i = 0; reserved[i]; i++)
        if (strcmp(name, reserved[i]) == 0)
            return true;
    return strncmp(name, "grpc-", 5) == 0;
}

static void grpc_free_cfg(void *cfg)
{
    grpc_cfg *g = cfg;
    free(g->store);
    g->store = NULL;
    g->nmetadata = 0;
}

static int parse_metadata(grpc_cfg *g, const ha_key_source *src)
{
    char path[160];
    const cJSON *obj = ha_key_find(src, "metadata", path, sizeof(path));
    if (!obj)
        return 0;
    if (!cJSON_IsObject(obj))
        return ha_key_error(src, "%s: expected an object of \"name\": \"value\" strings, got %s",
                            path, ha_json_type_name(obj));
    size_t n = (size_t)cJSON_GetArraySize(obj);
    if (n > GRPC_META_MAX)
        return ha_key_error(src, "%s: at most %d entries", path, GRPC_META_MAX);
    /* First pass: validate and expand, measuring; second: copy into one owned block. */
    char names[GRPC_META_MAX][GRPC_META_NAME_MAX];
    char *values[GRPC_META_MAX] = {0};
    size_t total = 0, i = 0;
    int rc = 0;
    for (const cJSON *it = obj->child; it; it = it->next, i++) {
        if (strlen(it->string) >= GRPC_META_NAME_MAX) {
            rc = ha_key_error(src, "%s: name \"%.40s...\" is longer than %d bytes", path,
                              it->string, GRPC_META_NAME_MAX - 1);
            break;
        }
        snprintf(names[i], sizeof(names[i]), "%s", it->string);
        if (!metadata_name_ok(names[i])) {
            rc = ha_key_error(src,
                              "%s: \"%.60s\" is not a valid metadata name (letters, digits, "
                              "\"-\", \"_\", \".\")",
                              path, it->string);
            break;
        }
        if (metadata_name_reserved(names[i])) {
            rc = ha_key_error(src, "%s.%s: reserved: healthagg, HTTP/2 or gRPC sets this header",
                              path, names[i]);
            break;
        }
        for (size_t k = 0; k < i; k++)
            if (strcmp(names[k], names[i]) == 0) {
                rc = ha_key_error(src, "%s.%s: given twice (names are case-insensitive)", path,
                                  names[i]);
                break;
            }
        if (rc)
            break;
        if (!cJSON_IsString(it)) {
            rc = ha_key_error(src, "%s.%s: expected a string, got %s", path, it->string,
                              ha_json_type_name(it));
            break;
        }
        char vpath[200];
        snprintf(vpath, sizeof(vpath), "%s.%s", path, it->string);
        values[i] = ha_expand_env(it->valuestring, vpath, src->err, src->errlen);
        if (!values[i]) {
            rc = -1;
            break;
        }
        for (const char *c = values[i]; *c; c++)
            if ((unsigned char)*c < 0x20 && *c != '\t') {
                rc = ha_key_error(src, "%s: control characters are not allowed in values", vpath);
                break;
            }
        if (!rc && strlen(values[i]) > GRPC_META_VALUE_MAX)
            rc = ha_key_error(src, "%s: longer than %d bytes", vpath, GRPC_META_VALUE_MAX);
        if (rc)
            break;
        total += strlen(names[i]) + 1 + strlen(values[i]) + 1;
    }
    if (rc == 0 && n > 0) {
        g->store = malloc(total);
        if (!g->store) {
            rc = ha_key_error(src, "%s: out of memory", path);
        } else {
            char *o = g->store;
            for (size_t k = 0; k < n; k++) {
                size_t nl = strlen(names[k]) + 1, vl = strlen(values[k]) + 1;
                memcpy(o, names[k], nl);
                g->metadata[k].name = o;
                o += nl;
                memcpy(o, values[k], vl);
                g->metadata[k].value = o;
                o += vl;
            }
            g->nmetadata = n;
        }
    }
    for (size_t k = 0; k < GRPC_META_MAX; k++)
        free(values[k]);
    return rc;
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
    if (g->nmetadata) {
        cJSON *m = cJSON_AddObjectToObject(out, "metadata");
        for (size_t i = 0; m && i < g->nmetadata; i++)
            cJSON_AddStringToObject(m, g->metadata[i].name, "<redacted>");
    }
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
        .metadata = g->metadata,
        .nmetadata = g->nmetadata,
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
