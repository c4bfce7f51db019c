/* check_types.c - the scheme table: the one place that lists the check types and transports,
 * and the glue that lets config.c parse a check without knowing any of them.
 *
 * A row maps a URL scheme to (type, transport, default port). Lookups are a linear scan: the
 * table has a handful of rows and is read only while loading the config. The key helpers
 * give every type the same error shape ("checks[2].expect_status: ...") and the same
 * precedence (the check's own key, then "defaults"). */
#include "healthagg/check.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern const ha_check_type ha_check_http;
extern const ha_check_type ha_check_tcp;
extern const ha_check_type ha_check_file;
extern const ha_check_type ha_check_grpc;

static const ha_scheme_row scheme_table[] = {
    {"http", &ha_check_http, &ha_transport_tcp, 80},
    {"https", &ha_check_http, &ha_transport_tls, 443},
    {"tcp", &ha_check_tcp, &ha_transport_tcp, 0},
    {"file", &ha_check_file, NULL, 0},
    {"grpc", &ha_check_grpc, &ha_transport_tcp, 0},
    {"grpcs", &ha_check_grpc, &ha_transport_tls, 0},
};
#define N_ROWS (sizeof(scheme_table) / sizeof(scheme_table[0]))

const ha_scheme_row *ha_scheme_lookup(const char *scheme)
{
    for (size_t i = 0; i < N_ROWS; i++)
        if (strcmp(scheme_table[i].scheme, scheme) == 0)
            return &scheme_table[i];
    return NULL;
}

void ha_scheme_list(char *buf, size_t len)
{
    size_t off = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < N_ROWS && off < len; i++)
        off +=
            (size_t)snprintf(buf + off, len - off, "%s%s", i ? ", " : "", scheme_table[i].scheme);
}

static bool in_list(const char *const *keys, const char *key)
{
    for (size_t i = 0; keys && keys[i]; i++)
        if (strcmp(keys[i], key) == 0)
            return true;
    return false;
}

bool ha_row_has_key(const ha_scheme_row *row, const char *key)
{
    return in_list(row->type->keys, key) || (row->transport && in_list(row->transport->keys, key));
}

bool ha_type_key_known(const char *key)
{
    for (size_t i = 0; i < N_ROWS; i++)
        if (ha_row_has_key(&scheme_table[i], key))
            return true;
    return false;
}

void ha_row_key_list(const ha_scheme_row *row, char *buf, size_t len)
{
    size_t off = 0;
    buf[0] = '\0';
    const char *const *lists[2] = {row->type->keys, row->transport ? row->transport->keys : NULL};
    for (size_t l = 0; l < 2; l++)
        for (size_t i = 0; lists[l] && lists[l][i] && off < len; i++)
            off += (size_t)snprintf(buf + off, len - off, "%s%s", off ? ", " : "", lists[l][i]);
}

int ha_check_parse_url(ha_check_config *c, const char *text, char *err, size_t errlen)
{
    if (strlen(text) >= sizeof(c->url_text)) {
        snprintf(err, errlen, "URL is longer than %zu bytes", sizeof(c->url_text) - 1);
        return -1;
    }
    snprintf(c->url_text, sizeof(c->url_text), "%s", text);
    if (ha_parse_url(text, &c->url, err, errlen) != 0)
        return -1;
    const ha_scheme_row *row = ha_scheme_lookup(c->url.scheme);
    if (!row) {
        char list[128];
        ha_scheme_list(list, sizeof(list));
        snprintf(err, errlen, "unsupported scheme \"%s\"; supported: %s", c->url.scheme, list);
        return -1;
    }
    c->row = row;
    if (c->url.port == 0 && row->transport) {
        if (!row->default_port) {
            snprintf(err, errlen, "%s:// needs a port, e.g. %s://127.0.0.1:5432", row->scheme,
                     row->scheme);
            return -1;
        }
        c->url.port = row->default_port;
    }
    if (row->type->check_url && row->type->check_url(c, err, errlen) != 0)
        return -1;
    return 0;
}

void ha_check_config_release(ha_check_config *c)
{
    if (c->row && c->type_cfg && c->row->type->free_cfg)
        c->row->type->free_cfg(c->type_cfg);
    if (c->row && c->transport_cfg && c->row->transport && c->row->transport->free_cfg)
        c->row->transport->free_cfg(c->transport_cfg);
    free(c->type_cfg);
    free(c->transport_cfg);
    c->type_cfg = NULL;
    c->transport_cfg = NULL;
}

int ha_check_parse_keys(ha_check_config *c, const ha_key_source *src)
{
    const ha_check_type *t = c->row->type;
    const ha_transport *tr = c->row->transport;
    if (t->cfg_size && !(c->type_cfg = calloc(1, t->cfg_size)))
        return ha_key_error(src, "%s: out of memory", src->path);
    if (tr && tr->cfg_size && !(c->transport_cfg = calloc(1, tr->cfg_size)))
        return ha_key_error(src, "%s: out of memory", src->path);
    if (t->parse && t->parse(c, src) != 0)
        return -1;
    if (tr && tr->parse && tr->parse(c, src) != 0)
        return -1;
    return 0;
}

void ha_check_describe(const ha_check_config *c, cJSON *out)
{
    cJSON_AddStringToObject(out, "type", c->row->type->name);
    if (c->row->type->describe)
        c->row->type->describe(c, out);
    if (c->row->transport && c->row->transport->describe)
        c->row->transport->describe(c, out);
}

/* --- key helpers -------------------------------------------------------------------------- */

const char *ha_json_type_name(const cJSON *v)
{
    if (cJSON_IsString(v))
        return "a string";
    if (cJSON_IsNumber(v))
        return "a number";
    if (cJSON_IsBool(v))
        return "a boolean";
    if (cJSON_IsNull(v))
        return "null";
    if (cJSON_IsArray(v))
        return "an array";
    if (cJSON_IsObject(v))
        return "an object";
    return "an invalid value";
}

int ha_key_error(const ha_key_source *src, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (src->err && src->errlen)
        vsnprintf(src->err, src->errlen, fmt, ap);
    va_end(ap);
    return -1;
}

const cJSON *ha_key_find(const ha_key_source *src, const char *key, char *path, size_t pathlen)
{
    const cJSON *v = src->obj ? cJSON_GetObjectItemCaseSensitive(src->obj, key) : NULL;
    if (v) {
        snprintf(path, pathlen, "%s.%s", src->path, key);
        return v;
    }
    v = src->defaults ? cJSON_GetObjectItemCaseSensitive(src->defaults, key) : NULL;
    if (v)
        snprintf(path, pathlen, "defaults.%s", key);
    else if (pathlen)
        path[0] = '\0'; /* never left unset: callers may print it */
    return v;
}

int ha_key_string(const ha_key_source *src, const char *key, char *out, size_t outlen)
{
    char path[160];
    const cJSON *v = ha_key_find(src, key, path, sizeof(path));
    if (!v)
        return 1;
    return ha_json_string(v, path, out, outlen, src->err, src->errlen);
}

int ha_key_uint(const ha_key_source *src, const char *key, unsigned min, unsigned max,
                unsigned *out)
{
    char path[160];
    const cJSON *v = ha_key_find(src, key, path, sizeof(path));
    if (!v)
        return 1;
    return ha_json_uint(v, path, min, max, out, src->err, src->errlen);
}

int ha_key_duration(const ha_key_source *src, const char *key, uint64_t *out_ms)
{
    char path[160];
    const cJSON *v = ha_key_find(src, key, path, sizeof(path));
    if (!v)
        return 1;
    return ha_json_duration(v, path, out_ms, src->err, src->errlen);
}

int ha_key_bool(const ha_key_source *src, const char *key, bool *out)
{
    char path[160];
    const cJSON *v = ha_key_find(src, key, path, sizeof(path));
    if (!v)
        return 1;
    return ha_json_bool(v, path, out, src->err, src->errlen);
}
