/* transport_tls.c - the TLS transport: https:// and grpcs:// run their protocol over it.
 *
 * The probe engine hands raw socket bytes to on_bytes and takes raw bytes back through
 * ha_probe_send_raw; in between sits the byte pipe of tls.c (Mbed TLS over in-memory
 * callbacks), so the HTTP and gRPC types never learn that TLS is there. One ha_tls per probe,
 * i.e. per check, built at init: the trust store, client key and Mbed TLS configuration are
 * parsed once, and the session of the last handshake is offered to the next probe (resumption).
 *
 * The check's `tls` object (and `defaults.tls`, key by key under it) is parsed and validated
 * here, files included, so a missing trust store or an unreadable key is a config error at load
 * ("checks[2].tls.ca_file: ..."), not a failing probe. The trade-off: a certificate file replaced
 * on disk is only read again when healthagg restarts. */
#include "healthagg/check.h"
#include "healthagg/log.h"
#include "healthagg/tls.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_WARN_DAYS 3650

typedef struct tls_state {
    ha_tls *tls;
    bool ready; /* the handshake of this attempt completed */
} tls_state;

static const char *const tls_keys[] = {"tls", NULL};
static const char *const object_keys[] = {"ca_file",          "server_name", "insecure_skip_verify",
                                          "client_cert",      "client_key",  "min_version",
                                          "warn_cert_expiry", NULL};

/* A duration that may also be given in days ("14d"), for certificate windows. */
static int parse_window(const char *s, uint64_t *out_ms, char *err, size_t errlen)
{
    size_t n = strlen(s);
    if (n >= 2 && s[n - 1] == 'd') {
        uint64_t days = 0;
        for (size_t i = 0; i + 1 < n; i++) {
            if (s[i] < '0' || s[i] > '9' || days > MAX_WARN_DAYS) {
                days = MAX_WARN_DAYS + 1;
                break;
            }
            days = days * 10 + (uint64_t)(s[i] - '0');
        }
        if (days > MAX_WARN_DAYS) {
            snprintf(err, errlen,
                     "invalid duration \"%.40s\"; use a whole number of days up to "
                     "%ud (e.g. 14d), or ms, s, m, h",
                     s, MAX_WARN_DAYS);
            return -1;
        }
        *out_ms = days * 86400000ull;
        return 0;
    }
    return ha_parse_duration(s, out_ms, err, errlen);
}

/* One `tls` object (from defaults or the check) onto o; `path` is "checks[2].tls". */
static int parse_object(ha_tls_options *o, const cJSON *obj, const char *path,
                        const ha_key_source *src)
{
    if (!cJSON_IsObject(obj))
        return ha_key_error(src,
                            "%s: must be an object with keys such as ca_file, server_name; "
                            "got %s",
                            path, ha_json_type_name(obj));
    for (const cJSON *kv = obj->child; kv; kv = kv->next) {
        bool known = false;
        for (size_t i = 0; object_keys[i]; i++)
            known = known || strcmp(kv->string, object_keys[i]) == 0;
        if (!known)
            return ha_key_error(src,
                                "%s.%.60s: unknown key; valid keys here are: ca_file, "
                                "server_name, insecure_skip_verify, client_cert, "
                                "client_key, min_version, warn_cert_expiry",
                                path, kv->string);
    }
    char kpath[200], text[32];
    const cJSON *v;
#define STRING_KEY(name, field)                                                                    \
    if ((v = cJSON_GetObjectItemCaseSensitive(obj, name))) {                                       \
        snprintf(kpath, sizeof(kpath), "%s.%s", path, name);                                       \
        if (ha_json_string(v, kpath, o->field, sizeof(o->field), src->err, src->errlen) != 0)      \
            return -1;                                                                             \
    }
    STRING_KEY("ca_file", ca_file)
    STRING_KEY("server_name", server_name)
    STRING_KEY("client_cert", client_cert)
    STRING_KEY("client_key", client_key)
#undef STRING_KEY
    if ((v = cJSON_GetObjectItemCaseSensitive(obj, "insecure_skip_verify"))) {
        snprintf(kpath, sizeof(kpath), "%s.insecure_skip_verify", path);
        if (ha_json_bool(v, kpath, &o->insecure_skip_verify, src->err, src->errlen) != 0)
            return -1;
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(obj, "min_version"))) {
        snprintf(kpath, sizeof(kpath), "%s.min_version", path);
        if (ha_json_string(v, kpath, text, sizeof(text), src->err, src->errlen) != 0)
            return -1;
        if (strcmp(text, "1.2") == 0)
            o->min_version = 12;
        else if (strcmp(text, "1.3") == 0)
            o->min_version = 13;
        else
            return ha_key_error(src, "%s: must be \"1.2\" or \"1.3\", got \"%.20s\"", kpath, text);
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(obj, "warn_cert_expiry"))) {
        snprintf(kpath, sizeof(kpath), "%s.warn_cert_expiry", path);
        if (ha_json_string(v, kpath, text, sizeof(text), src->err, src->errlen) != 0)
            return -1;
        char why[HA_ERR_MAX];
        if (parse_window(text, &o->warn_cert_expiry_ms, why, sizeof(why)) != 0)
            return ha_key_error(src, "%s: %s", kpath, why);
    }
    return 0;
}

static int tls_parse(ha_check_config *c, const ha_key_source *src)
{
    ha_tls_options *o = c->transport_cfg;
    o->min_version = 12;
    const cJSON *d = src->defaults ? cJSON_GetObjectItemCaseSensitive(src->defaults, "tls") : NULL;
    const cJSON *mine = src->obj ? cJSON_GetObjectItemCaseSensitive(src->obj, "tls") : NULL;
    char path[160];
    if (d && parse_object(o, d, "defaults.tls", src) != 0)
        return -1;
    snprintf(path, sizeof(path), "%s.tls", src->path);
    if (mine && parse_object(o, mine, path, src) != 0)
        return -1;
    char why[HA_ERR_MAX];
    if (ha_tls_options_check(o, why, sizeof(why)) != 0) {
        if (src->obj) /* "checks[2].tls.ca_file: ..." */
            return ha_key_error(src, "%s.%s", path, why);
        /* from the command line: `serve --check` names the flag; `check` prints the URL itself */
        if (strncmp(src->path, "--check", 7) == 0)
            return ha_key_error(src, "%s: tls.%s", src->path, why);
        return ha_key_error(src, "tls.%s%s", why,
                            strncmp(why, "ca_file", 7) == 0 ? " (--ca-file)" : "");
    }
    return 0;
}

static void tls_describe(const ha_check_config *c, cJSON *out)
{
    const ha_tls_options *o = c->transport_cfg;
    cJSON *t = cJSON_AddObjectToObject(out, "tls");
    if (!t)
        return;
    cJSON_AddStringToObject(t, "ca_file", o->ca_file[0] ? o->ca_file : HA_TLS_SYSTEM_CA_FILE);
    cJSON_AddStringToObject(t, "server_name", o->server_name[0] ? o->server_name : c->url.host);
    cJSON_AddBoolToObject(t, "insecure_skip_verify", o->insecure_skip_verify);
    if (o->client_cert[0])
        cJSON_AddStringToObject(t, "client_cert", o->client_cert);
    cJSON_AddStringToObject(t, "min_version", o->min_version == 13 ? "1.3" : "1.2");
    if (o->warn_cert_expiry_ms)
        cJSON_AddNumberToObject(t, "warn_cert_expiry_ms", (double)o->warn_cert_expiry_ms);
}

static int tls_init(ha_probe *p)
{
    tls_state *st = p->transport_state;
    const ha_tls_options *o = p->cfg->transport_cfg;
    const char *alpn = strcmp(p->cfg->row->scheme, "grpcs") == 0 ? "h2" : "http/1.1";
    char err[HA_ERR_MAX];
    if (ha_tls_new(&st->tls, o, p->cfg->url.host, alpn, err, sizeof(err)) != 0)
        return UV_EINVAL; /* the same options passed ha_tls_options_check at load */
    return 0;
}

static void tls_reset(ha_probe *p)
{
    tls_state *st = p->transport_state;
    st->ready = false;
}

/* The handshake completed: the certificate's expiry is known, the protocol may start. */
static void opened(ha_probe *p, tls_state *st)
{
    st->ready = true;
    ha_tls_info info;
    ha_tls_get_info(st->tls, &info);
    p->cert_not_after = info.not_after;
    const ha_tls_options *o = p->cfg->transport_cfg;
    int64_t now = (int64_t)time(NULL);
    if (o->warn_cert_expiry_ms && info.not_after &&
        (info.not_after - now) * 1000 < (int64_t)o->warn_cert_expiry_ms) {
        char when[32];
        ha_tls_format_time(info.not_after, when, sizeof(when));
        int64_t left = info.not_after - now;
        if (left >= 86400)
            ha_probe_warn(p, "certificate expires in %lldd (notAfter %s)",
                          (long long)(left / 86400), when);
        else
            ha_probe_warn(p, "certificate expires in %lldh (notAfter %s)", (long long)(left / 3600),
                          when);
    }
    ha_probe_transport_ready(p);
}

static void failed(ha_probe *p, tls_state *st)
{
    const char *why = ha_tls_reason(st->tls);
    if (strstr(why, "out of memory"))
        p->inconclusive = true;
    ha_probe_finish(p, false, 0, "%s (%s)", why, p->target);
}

static void settle(ha_probe *p, tls_state *st, ha_tls_status s)
{
    if (!p->running)
        return;
    if (s == HA_TLS_FAILED)
        failed(p, st);
    else if (s == HA_TLS_OPEN && !st->ready)
        opened(p, st);
    else if (s == HA_TLS_CLOSED) {
        if (!st->ready)
            opened(p, st);
        ha_probe_deliver_eof(p);
    }
}

static int io_send(void *ctx, const unsigned char *data, size_t len)
{
    return ha_probe_send_raw(ctx, (const char *)data, len);
}

static int io_deliver(void *ctx, const char *data, size_t len)
{
    ha_probe *p = ctx;
    tls_state *st = p->transport_state;
    /* TLS 1.3 servers may send data (an HTTP/2 SETTINGS frame) with their last handshake
     * flight: the protocol starts before it sees it. */
    if (p->running && !st->ready)
        opened(p, st);
    ha_probe_deliver(p, data, len);
    return p->running ? 0 : 1;
}

static void tls_on_connected(ha_probe *p)
{
    tls_state *st = p->transport_state;
    ha_tls_io io = {.ctx = p, .send_raw = io_send, .deliver = io_deliver};
    if (ha_tls_begin(st->tls, &io) != 0) {
        failed(p, st);
        return;
    }
    settle(p, st, ha_tls_drive(st->tls, NULL, 0));
}

static void tls_on_bytes(ha_probe *p, const char *data, size_t len)
{
    tls_state *st = p->transport_state;
    settle(p, st, ha_tls_drive(st->tls, data, len));
}

static void tls_on_eof(ha_probe *p)
{
    tls_state *st = p->transport_state;
    ha_tls_eof(st->tls);
    if (ha_tls_status_of(st->tls) == HA_TLS_FAILED)
        failed(p, st);
    else
        ha_probe_deliver_eof(p);
}

static int tls_send(ha_probe *p, const char *data, size_t len)
{
    tls_state *st = p->transport_state;
    if (ha_tls_write(st->tls, data, len) != 0) {
        if (p->running)
            failed(p, st);
        return -1;
    }
    return p->running ? 0 : -1;
}

static void tls_free(ha_probe *p)
{
    tls_state *st = p->transport_state;
    if (st) {
        ha_tls_free(st->tls);
        st->tls = NULL;
    }
}

const ha_transport ha_transport_tls = {
    .name = "tls",
    .keys = tls_keys,
    .cfg_size = sizeof(ha_tls_options),
    .state_size = sizeof(tls_state),
    .parse = tls_parse,
    .describe = tls_describe,
    .init = tls_init,
    .reset = tls_reset,
    .on_connected = tls_on_connected,
    .on_bytes = tls_on_bytes,
    .on_eof = tls_on_eof,
    .send = tls_send,
    .free = tls_free,
};

void ha_tls_log_insecure(const ha_check_config *checks, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const ha_check_config *c = &checks[i];
        if (!c->row || c->row->transport != &ha_transport_tls || !c->transport_cfg ||
            !((const ha_tls_options *)c->transport_cfg)->insecure_skip_verify)
            continue;
        cJSON *o = ha_log_begin("warn", "tls_insecure");
        if (o) {
            cJSON_AddStringToObject(o, "check", c->name);
            cJSON_AddStringToObject(o, "url", c->url_text);
            cJSON_AddStringToObject(o, "note",
                                    "tls.insecure_skip_verify is true: the target's certificate "
                                    "is not verified, anyone on the path can impersonate it");
        }
        ha_log_emit(o);
    }
}
