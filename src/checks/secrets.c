/* secrets.c - name/value maps of secrets (http headers) and their redaction.
 *
 * Owns: the HTTP field name/value rules, the map's memory and the list of
 * strings to scrub from reasons. Trade-off: scrubbing a reason is a plain substring search per
 * secret (a handful of short strings against a ~200-byte reason, only on checks that have
 * secrets), which is cheap enough that no index is kept; values shorter than
 * HA_SECRET_SCRUB_MIN bytes are not scrubbed, since hiding every "1" or "on" would garble
 * reasons without protecting anything worth protecting. */
#include "healthagg/secrets.h"

#include "healthagg/expand.h"

#include "healthagg/quote.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (err && errlen)
        vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* Adds a copy of s to the map's scrub list unless it is too short or already there. */
static int add_scrub(ha_secret_map *m, const char *s)
{
    if (strlen(s) < HA_SECRET_SCRUB_MIN)
        return 0;
    for (size_t i = 0; i < m->n_scrub; i++)
        if (strcmp(m->scrub[i], s) == 0)
            return 0;
    char **grown = realloc(m->scrub, (m->n_scrub + 1) * sizeof(*m->scrub));
    if (!grown)
        return -1;
    m->scrub = grown;
    if (!(m->scrub[m->n_scrub] = strdup(s)))
        return -1;
    m->n_scrub++;
    return 0;
}

/* Adds the values of the variables `text` names (already expanded without error, so every
 * ${NAME} is well-formed and set) to the scrub list: a target may echo the bare token. */
static int add_var_scrubs(ha_secret_map *m, const char *text)
{
    for (const char *p = text; (p = strchr(p, '$')) != NULL;) {
        if (p[1] == '$') {
            p += 2;
            continue;
        }
        if (p[1] != '{') {
            p++;
            continue;
        }
        const char *close = strchr(p + 2, '}');
        size_t nlen = close ? (size_t)(close - p - 2) : 0;
        char var[128];
        if (!close || nlen >= sizeof(var))
            return 0;
        memcpy(var, p + 2, nlen);
        var[nlen] = '\0';
        const char *value = getenv(var);
        if (value && add_scrub(m, value) != 0)
            return -1;
        p = close + 1;
    }
    return 0;
}

bool ha_http_field_name_ok(const char *name, char *why, size_t whylen)
{
    if (!name[0]) {
        snprintf(why, whylen, "an empty name");
        return false;
    }
    if (strlen(name) > HA_SECRET_NAME_MAX) {
        snprintf(why, whylen, "the name is longer than %d bytes", HA_SECRET_NAME_MAX);
        return false;
    }
    for (const char *p = name; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (!(isalnum(c) || (c < 0x80 && strchr("!#$%&'*+-.^_`|~", c)))) {
            char shown[16];
            ha_quote(shown, sizeof(shown), p, 1);
            snprintf(why, whylen,
                     "\"%s\" cannot appear in a header name (letters, digits and "
                     "!#$%%&'*+-.^_`|~ only)",
                     shown);
            return false;
        }
    }
    return true;
}

bool ha_http_field_value_ok(const char *value, char *why, size_t whylen)
{
    size_t len = strlen(value);
    if (len > HA_SECRET_VALUE_MAX) {
        snprintf(why, whylen, "the value is longer than %d bytes", HA_SECRET_VALUE_MAX);
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)value[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f) {
            snprintf(why, whylen,
                     "the value has a control character (%s) at byte %zu; a header value is "
                     "one line of text",
                     c == '\r'   ? "CR"
                     : c == '\n' ? "LF"
                                 : "not printable",
                     i);
            return false;
        }
    }
    return true;
}

void ha_secret_map_free(ha_secret_map *m)
{
    for (size_t i = 0; i < m->n; i++) {
        free(m->items[i].name);
        free(m->items[i].value);
    }
    for (size_t i = 0; i < m->n_scrub; i++)
        free(m->scrub[i]);
    free(m->items);
    free(m->scrub);
    memset(m, 0, sizeof(*m));
}

static int by_length_desc(const void *a, const void *b)
{
    size_t la = strlen(*(char *const *)a), lb = strlen(*(char *const *)b);
    return la < lb ? 1 : la > lb ? -1 : 0;
}

int ha_secret_map_parse(const cJSON *obj, const char *path, ha_secret_name_rule name_ok,
                        ha_secret_map *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (!name_ok)
        name_ok = ha_http_field_name_ok;
    if (!cJSON_IsObject(obj))
        return fail(err, errlen,
                    "%s: expected an object of name: value strings, e.g. "
                    "{\"Authorization\": \"Bearer ${APP_TOKEN}\"}",
                    path);
    size_t count = (size_t)cJSON_GetArraySize(obj);
    if (count > HA_SECRET_MAX_ITEMS)
        return fail(err, errlen, "%s: %zu entries; at most %d", path, count, HA_SECRET_MAX_ITEMS);
    if (count && !(out->items = calloc(count, sizeof(*out->items))))
        return fail(err, errlen, "%s: out of memory", path);
    for (const cJSON *it = obj->child; it; it = it->next) {
        char shown[HA_SECRET_NAME_MAX + 8], why[160], where[HA_SECRET_NAME_MAX + 256];
        ha_quote(shown, sizeof(shown), it->string, strlen(it->string));
        snprintf(where, sizeof(where), "%s.%s", path, shown);
        if (!name_ok(it->string, why, sizeof(why))) {
            fail(err, errlen, "%s: %s", where, why);
            goto bad;
        }
        if (ha_secret_map_get(out, it->string)) {
            fail(err, errlen, "%s: given twice (names are case-insensitive); keep one", where);
            goto bad;
        }
        if (!cJSON_IsString(it)) {
            fail(err, errlen, "%s: expected a string, got %s", where,
                 cJSON_IsNumber(it) ? "a number"
                 : cJSON_IsBool(it) ? "a boolean"
                                    : "not a string");
            goto bad;
        }
        ha_secret_pair *pair = &out->items[out->n];
        if (!(pair->name = strdup(it->string))) {
            fail(err, errlen, "%s: out of memory", where);
            goto bad;
        }
        out->n++; /* owned by the map from here */
        if (!(pair->value = ha_expand_env(it->valuestring, where, err, errlen)))
            goto bad;
        if (!ha_http_field_value_ok(pair->value, why, sizeof(why))) {
            fail(err, errlen, "%s: %s%s", where, why,
                 strcmp(pair->value, it->valuestring) != 0 ? " (after ${VAR} expansion)" : "");
            goto bad;
        }
        if (add_scrub(out, pair->value) != 0 || add_var_scrubs(out, it->valuestring) != 0) {
            fail(err, errlen, "%s: out of memory", where);
            goto bad;
        }
    }
    /* Longest first, so a value that contains a variable's value is hidden whole. */
    if (out->n_scrub > 1)
        qsort(out->scrub, out->n_scrub, sizeof(*out->scrub), by_length_desc);
    return 0;
bad:
    ha_secret_map_free(out);
    return -1;
}

const ha_secret_pair *ha_secret_map_get(const ha_secret_map *m, const char *name)
{
    for (size_t i = 0; i < m->n; i++)
        if (m->items[i].name && strcasecmp(m->items[i].name, name) == 0)
            return &m->items[i];
    return NULL;
}

void ha_secret_map_describe(const ha_secret_map *m, const char *key, cJSON *out)
{
    if (m->n == 0)
        return;
    cJSON *o = cJSON_AddObjectToObject(out, key);
    for (size_t i = 0; o && i < m->n; i++)
        cJSON_AddStringToObject(o, m->items[i].name, HA_REDACTED);
}

size_t ha_secret_scrub(const ha_secret_map *m, char *text, size_t cap)
{
    static const size_t rlen = sizeof(HA_REDACTED) - 1;
    size_t count = 0;
    if (cap == 0)
        return 0;
    for (size_t s = 0; s < m->n_scrub; s++) {
        const char *secret = m->scrub[s];
        size_t slen = strlen(secret);
        char *at = text;
        while ((at = strstr(at, secret)) != NULL) {
            size_t len = strlen(text), off = (size_t)(at - text);
            size_t tail = len - off - slen; /* bytes after the secret */
            size_t keep = tail;
            if (off + rlen + keep + 1 > cap) /* cut what follows to fit */
                keep = off + rlen + 1 < cap ? cap - 1 - off - rlen : 0;
            if (off + rlen + 1 > cap) { /* not even the marker fits: cut at the secret */
                text[off] = '\0';
                ha_utf8_trim_partial(text);
                return count + 1;
            }
            memmove(at + rlen, at + slen, keep);
            memcpy(at, HA_REDACTED, rlen);
            at[rlen + keep] = '\0';
            if (keep < tail)
                ha_utf8_trim_partial(text);
            count++;
            at += rlen;
        }
    }
    return count;
}
