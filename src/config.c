/* config.c - builds the effective configuration and validates it.
 *
 * Order of precedence, lowest first: built-in defaults, the JSON document's "defaults", each
 * check's own keys, then command-line flags (a flag like --interval applies to every check:
 * "flags win" is the rule users rely on when they override a baked-in config at run time).
 * Errors name the field as a path (checks[1].timeout) or the flag (--interval), say what
 * was wrong and how to fix it. Unknown and duplicate keys are errors: a typo in a health
 * check config must never silently fall back to a default. */
#include "healthagg/config.h"
#include "healthagg/check_type.h"

#include "healthagg/quote.h"

#include <cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define CONFIG_FILE_MAX (1024 * 1024)
#define PATH_MAX_LEN 96

typedef struct errbuf {
    char *buf;
    size_t len;
} errbuf;

static int errf(errbuf e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int errf(errbuf e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (e.buf && e.len)
        vsnprintf(e.buf, e.len, fmt, ap);
    va_end(ap);
    return -1;
}

static void set_builtin_check_defaults(ha_check_config *d)
{
    memset(d, 0, sizeof(*d));
    d->interval_ms = 5000;
    d->timeout_ms = 2000;
    d->start_period_ms = 0;
    d->failure_threshold = 3;
    d->success_threshold = 1;
    d->critical = true;
}

static void set_builtin_defaults(ha_config *c)
{
    memset(c, 0, sizeof(*c));
    strcpy(c->listen_host, "127.0.0.1");
    c->listen_port = 8099;
    c->grace_ms = 0;
    c->limits.max_connections = 1024;
    c->limits.max_header_bytes = 8192;
    c->limits.request_timeout_ms = 5000;
    c->limits.idle_timeout_ms = 60000;
    c->limits.max_requests_per_connection = 10000;
    c->enforce = true;
    c->history_size = 20;
    c->still_unhealthy_every_ms = 60000;
    strcpy(c->source, "defaults and flags");
}

/* Rejects keys outside `allowed` and keys given twice, naming the path and the valid keys. */
static int check_keys(const cJSON *obj, const char *path, const char *const *allowed, errbuf e)
{
    for (const cJSON *it = obj->child; it; it = it->next) {
        bool known = false;
        for (size_t i = 0; allowed[i]; i++)
            if (strcmp(it->string, allowed[i]) == 0)
                known = true;
        if (!known) {
            char list[512] = "";
            size_t off = 0;
            for (size_t i = 0; allowed[i] && off < sizeof(list); i++)
                off += (size_t)snprintf(list + off, sizeof(list) - off, "%s%s", i ? ", " : "",
                                        allowed[i]);
            return errf(e, "%s%s%.64s: unknown key; valid keys here are: %s", path,
                        *path ? "." : "", it->string, list);
        }
        for (const cJSON *prev = obj->child; prev != it; prev = prev->next)
            if (strcmp(prev->string, it->string) == 0)
                return errf(e, "%s%s%.64s: key appears twice; keep one", path, *path ? "." : "",
                            it->string);
    }
    return 0;
}

static int get_duration(const cJSON *v, const char *path, uint64_t *out, errbuf e)
{
    char msg[HA_ERR_MAX];
    if (!cJSON_IsString(v))
        return errf(e, "%s: expected a duration string like \"5s\", got %s", path,
                    ha_json_type_name(v));
    if (ha_parse_duration(v->valuestring, out, msg, sizeof(msg)) != 0)
        return errf(e, "%s: %s", path, msg);
    return 0;
}

/* A JSON number as the user wrote it, as far as a double can tell: the shortest form that
 * reads back as the same value (16777217, not %g's 1.67772e+07). */
static void format_number(double d, char *buf, size_t len)
{
    if (d == floor(d) && fabs(d) < 1e15) { /* whole numbers as written: 340, not 3.4e+02 */
        snprintf(buf, len, "%.0f", d);
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, len, "%.*g", prec, d);
        if (strtod(buf, NULL) == d)
            return;
    }
}

static int get_uint(const cJSON *v, const char *path, unsigned min, unsigned max, unsigned *out,
                    errbuf e)
{
    if (!cJSON_IsNumber(v))
        return errf(e, "%s: expected a whole number %u-%u, got %s", path, min, max,
                    ha_json_type_name(v));
    char num[40];
    format_number(v->valuedouble, num, sizeof(num));
    if (v->valuedouble != floor(v->valuedouble))
        return errf(e, "%s: %s is not a whole number; expected %u-%u", path, num, min, max);
    if (v->valuedouble < min)
        return errf(e, "%s: %s must be at least %u (%u-%u)", path, num, min, min, max);
    if (v->valuedouble > max)
        return errf(e, "%s: %s must be at most %u (%u-%u)", path, num, max, min, max);
    *out = (unsigned)v->valuedouble;
    return 0;
}

static int get_bool(const cJSON *v, const char *path, bool *out, errbuf e)
{
    if (!cJSON_IsBool(v))
        return errf(e, "%s: expected true or false, got %s", path, ha_json_type_name(v));
    *out = cJSON_IsTrue(v);
    return 0;
}

static int get_string(const cJSON *v, const char *path, char *out, size_t outlen, errbuf e)
{
    if (!cJSON_IsString(v))
        return errf(e, "%s: expected a string, got %s", path, ha_json_type_name(v));
    if (strlen(v->valuestring) >= outlen)
        return errf(e, "%s: longer than %zu characters", path, outlen - 1);
    strcpy(out, v->valuestring);
    return 0;
}

/* The same readers for the check types' keys (check_type.h), so every key of every type reads
 * and fails the same way. */
int ha_json_uint(const cJSON *v, const char *path, unsigned min, unsigned max, unsigned *out,
                 char *err, size_t errlen)
{
    return get_uint(v, path, min, max, out, (errbuf){err, errlen});
}

int ha_json_duration(const cJSON *v, const char *path, uint64_t *out, char *err, size_t errlen)
{
    return get_duration(v, path, out, (errbuf){err, errlen});
}

int ha_json_bool(const cJSON *v, const char *path, bool *out, char *err, size_t errlen)
{
    return get_bool(v, path, out, (errbuf){err, errlen});
}

int ha_json_string(const cJSON *v, const char *path, char *out, size_t outlen, char *err,
                   size_t errlen)
{
    return get_string(v, path, out, outlen, (errbuf){err, errlen});
}

/* Keys every check has, whatever its type; "defaults" takes these (but name and url) plus any
 * type's keys, which then apply to the checks whose type has them. */
static const char *const common_keys[] = {"name",
                                          "url",
                                          "interval",
                                          "timeout",
                                          "start_period",
                                          "failure_threshold",
                                          "success_threshold",
                                          "critical",
                                          "start_interval",
                                          "container",
                                          "groups",
                                          NULL};

/* Keys that identify one check, which "defaults" cannot set. */
static bool is_per_check_only(const char *k)
{
    return strcmp(k, "name") == 0 || strcmp(k, "url") == 0 || strcmp(k, "container") == 0;
}

static bool is_common_key(const char *k, bool in_defaults)
{
    if (in_defaults && is_per_check_only(k))
        return false;
    for (size_t i = 0; common_keys[i]; i++)
        if (strcmp(common_keys[i], k) == 0)
            return true;
    return false;
}

static size_t list_keys(char *buf, size_t len, size_t off, const char *const *keys, bool skip_id)
{
    for (size_t i = 0; keys[i] && off < len; i++) {
        if (skip_id && is_per_check_only(keys[i]))
            continue;
        off += (size_t)snprintf(buf + off, len - off, "%s%s", off ? ", " : "", keys[i]);
    }
    return off;
}

bool ha_group_name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n >= HA_GROUP_NAME_MAX)
        return false;
    for (const char *p = name; *p; p++)
        if (!(isalnum((unsigned char)*p) || *p == '_' || *p == '-' || *p == '.'))
            return false;
    return true;
}

/* "groups": a list of names (an empty list is none, to override "defaults"). */
static int get_groups(const cJSON *v, const char *path, ha_check_config *c, errbuf e)
{
    if (!cJSON_IsArray(v))
        return errf(e, "%s: expected a list of group names like [\"live\"], got %s", path,
                    ha_json_type_name(v));
    size_t n = (size_t)cJSON_GetArraySize(v);
    if (n > HA_GROUPS_PER_CHECK)
        return errf(e, "%s: %zu groups; a check may be in at most %d", path, n,
                    HA_GROUPS_PER_CHECK);
    size_t i = 0;
    for (const cJSON *it = v->child; it; it = it->next, i++) {
        if (!cJSON_IsString(it))
            return errf(e, "%s[%zu]: expected a group name, got %s", path, i,
                        ha_json_type_name(it));
        if (!ha_group_name_ok(it->valuestring)) {
            char shown[48];
            ha_quote(shown, sizeof(shown), it->valuestring, strlen(it->valuestring));
            return errf(e, "%s[%zu]: \"%s\" is not a group name; use 1-%d letters, digits, _ - .",
                        path, i, shown, HA_GROUP_NAME_MAX - 1);
        }
        for (size_t j = 0; j < i; j++)
            if (strcmp(c->groups[j], it->valuestring) == 0)
                return errf(e, "%s[%zu]: \"%s\" is listed twice; keep one", path, i,
                            it->valuestring);
        strcpy(c->groups[i], it->valuestring);
    }
    c->n_groups = (unsigned)n;
    return 0;
}

int ha_config_group_find(const ha_config *c, const char *name, size_t len)
{
    for (size_t g = 0; g < c->n_groups; g++)
        if (strlen(c->groups[g].name) == len && memcmp(c->groups[g].name, name, len) == 0)
            return (int)g;
    return -1;
}

/* The group table from every check's "groups": names in order of first mention, members,
 * and each check's bit mask. */
static int build_groups(ha_config *c, errbuf e)
{
    for (size_t i = 0; i < c->n_checks; i++) {
        ha_check_config *k = &c->checks[i];
        k->group_mask = 0;
        for (unsigned j = 0; j < k->n_groups; j++) {
            int g = ha_config_group_find(c, k->groups[j], strlen(k->groups[j]));
            if (g < 0) {
                if (c->n_groups == HA_MAX_GROUPS)
                    return errf(e,
                                "checks[%zu].groups: \"%s\" would be group number %d; at most %d "
                                "distinct groups",
                                i, k->groups[j], HA_MAX_GROUPS + 1, HA_MAX_GROUPS);
                if (!c->groups && !(c->groups = calloc(HA_MAX_GROUPS, sizeof(*c->groups))))
                    return errf(e, "groups: out of memory");
                g = (int)c->n_groups++;
                strcpy(c->groups[g].name, k->groups[j]);
            }
            k->group_mask |= 1ull << g;
            c->groups[g].n_members++;
        }
    }
    for (size_t g = 0; g < c->n_groups; g++) {
        ha_group *gr = &c->groups[g];
        if (!(gr->members = calloc(gr->n_members, sizeof(*gr->members))) ||
            !(gr->member_bits = calloc((c->n_checks + 63) / 64, sizeof(uint64_t))))
            return errf(e, "groups: out of memory");
        gr->n_members = 0;
        for (size_t i = 0; i < c->n_checks; i++)
            if (c->checks[i].group_mask & (1ull << g)) {
                gr->members[gr->n_members++] = i;
                gr->member_bits[i / 64] |= 1ull << (i % 64);
            }
    }
    return 0;
}

/* Unknown and duplicate keys of a check (row known) or of "defaults" (row NULL). */
static int check_check_keys(const cJSON *obj, const char *path, const ha_scheme_row *row, errbuf e)
{
    for (const cJSON *it = obj->child; it; it = it->next) {
        const char *k = it->string;
        for (const cJSON *prev = obj->child; prev != it; prev = prev->next)
            if (strcmp(prev->string, k) == 0)
                return errf(e, "%s.%.64s: key appears twice; keep one", path, k);
        if (is_common_key(k, row == NULL))
            continue;
        if (row ? ha_row_has_key(row, k) : ha_type_key_known(k))
            continue;
        char list[768];
        size_t off = list_keys(list, sizeof(list), 0, common_keys, row == NULL);
        if (row) {
            char own[512];
            ha_row_key_list(row, own, sizeof(own));
            if (own[0] && off < sizeof(list))
                snprintf(list + off, sizeof(list) - off, ", %s", own);
            if (ha_type_key_known(k))
                return errf(e, "%s.%.64s: not a key of %s checks; valid keys: %s", path, k,
                            row->scheme, list);
        } else if (off < sizeof(list)) {
            snprintf(list + off, sizeof(list) - off, ", and the keys of any check type");
        }
        return errf(e, "%s.%.64s: unknown key; valid keys here are: %s", path, k, list);
    }
    return 0;
}

static int apply_check_fields(const cJSON *obj, const char *path, ha_check_config *c, errbuf e)
{
    char p[PATH_MAX_LEN + 32];
    for (const cJSON *v = obj->child; v; v = v->next) {
        snprintf(p, sizeof(p), "%s.%s", path, v->string);
        const char *k = v->string;
        int rc = 0;
        if (strcmp(k, "interval") == 0) {
            rc = get_duration(v, p, &c->interval_ms, e);
        } else if (strcmp(k, "timeout") == 0) {
            rc = get_duration(v, p, &c->timeout_ms, e);
        } else if (strcmp(k, "start_period") == 0) {
            rc = get_duration(v, p, &c->start_period_ms, e);
        } else if (strcmp(k, "start_interval") == 0) {
            rc = get_duration(v, p, &c->start_interval_ms, e);
        } else if (strcmp(k, "container") == 0) {
            rc = get_string(v, p, c->container, sizeof(c->container), e);
        } else if (strcmp(k, "failure_threshold") == 0) {
            rc = get_uint(v, p, 1, 100, &c->failure_threshold, e);
        } else if (strcmp(k, "success_threshold") == 0) {
            rc = get_uint(v, p, 1, 100, &c->success_threshold, e);
        } else if (strcmp(k, "critical") == 0) {
            rc = get_bool(v, p, &c->critical, e);
        } else if (strcmp(k, "groups") == 0) {
            rc = get_groups(v, p, c, e);
        } else if (strcmp(k, "name") == 0) {
            rc = get_string(v, p, c->name, sizeof(c->name), e);
            if (rc == 0 && c->name[0] == '\0')
                return errf(e,
                            "%s: empty; leave \"name\" out to use the default (HOST:PORT of the "
                            "url) or give one",
                            p);
        }
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int apply_server_fields(const cJSON *obj, ha_config *c, errbuf e)
{
    ha_server_limits *l = &c->limits;
    static const char *const keys[] = {"max_connections",
                                       "public_details",
                                       "max_header_bytes",
                                       "request_timeout",
                                       "idle_timeout",
                                       "max_requests_per_connection",
                                       NULL};
    if (!cJSON_IsObject(obj))
        return errf(e, "server: expected an object, got %s", ha_json_type_name(obj));
    if (check_keys(obj, "server", keys, e) != 0)
        return -1;
    char p[PATH_MAX_LEN];
    for (const cJSON *v = obj->child; v; v = v->next) {
        snprintf(p, sizeof(p), "server.%s", v->string);
        int rc = 0;
        if (strcmp(v->string, "max_connections") == 0)
            rc = get_uint(v, p, 1, 65536, &l->max_connections, e);
        else if (strcmp(v->string, "max_header_bytes") == 0)
            rc = get_uint(v, p, 256, 1024 * 1024, &l->max_header_bytes, e);
        else if (strcmp(v->string, "request_timeout") == 0)
            rc = get_duration(v, p, &l->request_timeout_ms, e);
        else if (strcmp(v->string, "idle_timeout") == 0)
            rc = get_duration(v, p, &l->idle_timeout_ms, e);
        else if (strcmp(v->string, "max_requests_per_connection") == 0)
            rc = get_uint(v, p, 1, 1000000000, &l->max_requests_per_connection, e);
        else if (strcmp(v->string, "public_details") == 0)
            rc = get_bool(v, p, &c->public_details, e);
        if (rc != 0)
            return rc;
    }
    if (l->request_timeout_ms == 0)
        return errf(e, "server.request_timeout: must be above 0 (e.g. \"5s\")");
    if (l->idle_timeout_ms == 0)
        return errf(e, "server.idle_timeout: must be above 0 (e.g. \"60s\")");
    return 0;
}

/* Derives a name from the URL when none is given: "127.0.0.1:8080", or a file's base name. */
static void default_name(ha_check_config *c)
{
    if (!c->row->transport) {
        const char *base = strrchr(c->url.path, '/');
        snprintf(c->name, sizeof(c->name), "%.*s", (int)sizeof(c->name) - 1,
                 base && base[1] ? base + 1 : "file");
        for (char *q = c->name; *q; q++) /* a name, not a path: keep it to the valid set */
            if (!(isalnum((unsigned char)*q) || strchr("_-.:", *q)))
                *q = '_';
        return;
    }
    ha_format_hostport(c->url.host, c->url.host_is_ipv6, c->url.port, c->name, sizeof(c->name));
}

/* Line and column (1-based, in bytes) of offset `off`. */
static void position(const char *json, size_t off, unsigned *line, unsigned *col)
{
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < off; i++) {
        if (json[i] == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
}

/* What cJSON accepts but would silently change: a NUL byte or a \u0000 escape (cJSON's strings
 * are C strings: the rest of the string would vanish), and bytes that are not UTF-8 (JSON text
 * is UTF-8; such a string would end up in logs and /health). */
static int scan_json_text(const char *json, size_t len, const char *origin, errbuf e)
{
    unsigned line, col;
    size_t bad = ha_utf8_invalid_at(json, len);
    const char *nul = memchr(json, '\0', len);
    if (nul && (size_t)(nul - json) < bad) {
        position(json, (size_t)(nul - json), &line, &col);
        return errf(e, "%s: a NUL byte at line %u column %u; a config is text", origin, line, col);
    }
    if (bad < len) {
        position(json, bad, &line, &col);
        return errf(e, "%s: not valid UTF-8 at line %u column %u; save the config as UTF-8", origin,
                    line, col);
    }
    bool in_string = false;
    for (size_t i = 0; i < len; i++) {
        if (json[i] == '"') {
            in_string = !in_string;
        } else if (in_string && json[i] == '\\' && i + 1 < len) {
            if (len - i >= 6 && memcmp(json + i + 1, "u0000", 5) == 0) {
                position(json, i, &line, &col);
                return errf(e,
                            "%s: \\u0000 (a NUL character) in a string at line %u column %u; "
                            "strings may not contain it",
                            origin, line, col);
            }
            i++; /* skip the escaped character, which may be a quote */
        }
    }
    return 0;
}

/* Parses exactly one JSON document: text after it (a second document, a comment, a brace too
 * many) would otherwise be dropped without a word, and the settings in it with it. */
static cJSON *parse_document(const char *json, size_t len, const char *origin, errbuf e)
{
    if (scan_json_text(json, len, origin, e) != 0)
        return NULL;
    const char *end = NULL;
    unsigned line, col;
    cJSON *root = cJSON_ParseWithLengthOpts(json, len, &end, false);
    if (!root) {
        size_t off = end && end >= json ? (size_t)(end - json) : 0;
        position(json, off > len ? len : off, &line, &col);
        errf(e, "%s: invalid JSON near line %u column %u; check quotes, commas and braces", origin,
             line, col);
        return NULL;
    }
    size_t off = (size_t)(end - json);
    while (off < len &&
           (json[off] == ' ' || json[off] == '\t' || json[off] == '\n' || json[off] == '\r'))
        off++;
    if (off < len) {
        char shown[48];
        ha_quote(shown, sizeof(shown), json + off, len - off);
        position(json, off, &line, &col);
        errf(e,
             "%s: unexpected text after the JSON document at line %u column %u (\"%s\"); the "
             "document ended before it: a brace closed too early, a second document, or a comment "
             "(JSON has none)",
             origin, line, col, shown);
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}

/* The check's url (parsed first: it decides which keys are valid), its keys, its type's keys. */
static int apply_check(const cJSON *obj, const cJSON *defaults_json, const char *path,
                       ha_check_config *cc, errbuf e)
{
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(obj, "url");
    if (!u)
        return errf(e,
                    "%s.url: missing; every check needs a url such as "
                    "\"http://127.0.0.1:8080/healthz\" or \"tcp://127.0.0.1:5432\"",
                    path);
    char p[PATH_MAX_LEN + 8], msg[HA_ERR_MAX];
    snprintf(p, sizeof(p), "%s.url", path);
    if (!cJSON_IsString(u))
        return errf(e, "%s: expected a string, got %s", p, ha_json_type_name(u));
    if (ha_check_parse_url(cc, u->valuestring, msg, sizeof(msg)) != 0)
        return errf(e, "%s: %s", p, msg);
    if (check_check_keys(obj, path, cc->row, e) != 0 || apply_check_fields(obj, path, cc, e) != 0)
        return -1;
    ha_key_source src = {defaults_json, obj, path, e.buf, e.len};
    return ha_check_parse_keys(cc, &src);
}

/* The JSON document, applied on top of `out`'s current contents. */
static int apply_json(const char *json, size_t len, const char *origin, ha_config *out,
                      ha_check_config *defaults, cJSON **defaults_json, errbuf e)
{
    static const char *const top_keys[] = {
        "listen",       "shutdown_grace",           "defaults", "checks", "server", "enforce",
        "history_size", "still_unhealthy_interval", NULL};
    cJSON *root = parse_document(json, len, origin, e);
    if (!root)
        return -1;
    int rc = -1;
    if (!cJSON_IsObject(root)) {
        errf(e, "%s: the config must be a JSON object, got %s", origin, ha_json_type_name(root));
        goto out;
    }
    if (check_keys(root, "", top_keys, e) != 0)
        goto out;
    const cJSON *v;
    if ((v = cJSON_GetObjectItemCaseSensitive(root, "listen")) != NULL) {
        char msg[HA_ERR_MAX], text[128];
        if (get_string(v, "listen", text, sizeof(text), e) != 0)
            goto out;
        if (ha_parse_listen(text, out->listen_host, sizeof(out->listen_host), &out->listen_port,
                            msg, sizeof(msg)) != 0) {
            errf(e, "listen: %s", msg);
            goto out;
        }
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(root, "shutdown_grace")) != NULL &&
        get_duration(v, "shutdown_grace", &out->grace_ms, e) != 0)
        goto out;
    if ((v = cJSON_GetObjectItemCaseSensitive(root, "server")) != NULL &&
        apply_server_fields(v, out, e) != 0)
        goto out;
    if ((v = cJSON_GetObjectItemCaseSensitive(root, "enforce")) != NULL &&
        get_bool(v, "enforce", &out->enforce, e) != 0)
        goto out;
    if ((v = cJSON_GetObjectItemCaseSensitive(root, "history_size")) != NULL &&
        get_uint(v, "history_size", 0, 1000, &out->history_size, e) != 0)
        goto out;
    if ((v = cJSON_GetObjectItemCaseSensitive(root, "still_unhealthy_interval")) != NULL) {
        if (get_duration(v, "still_unhealthy_interval", &out->still_unhealthy_every_ms, e) != 0)
            goto out;
        if (out->still_unhealthy_every_ms != 0 && out->still_unhealthy_every_ms < 1000) {
            errf(e, "still_unhealthy_interval: must be 0 (off) or at least 1s");
            goto out;
        }
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(root, "defaults")) != NULL) {
        if (!cJSON_IsObject(v)) {
            errf(e, "defaults: expected an object, got %s", ha_json_type_name(v));
            goto out;
        }
        if (check_check_keys(v, "defaults", NULL, e) != 0 ||
            apply_check_fields(v, "defaults", defaults, e) != 0)
            goto out;
        if (defaults_json && !(*defaults_json = cJSON_Duplicate(v, true))) {
            errf(e, "defaults: out of memory");
            goto out;
        }
    }
    const cJSON *checks = cJSON_GetObjectItemCaseSensitive(root, "checks");
    if (checks) {
        if (!cJSON_IsArray(checks)) {
            errf(e, "checks: expected an array of checks, got %s", ha_json_type_name(checks));
            goto out;
        }
        size_t n = (size_t)cJSON_GetArraySize(checks);
        if (n > HA_MAX_CHECKS) {
            errf(e, "checks: %zu checks is more than the limit of %d", n, HA_MAX_CHECKS);
            goto out;
        }
        out->checks = calloc(n ? n : 1, sizeof(*out->checks));
        if (!out->checks) {
            errf(e, "checks: out of memory");
            goto out;
        }
        size_t i = 0;
        for (const cJSON *c = checks->child; c; c = c->next, i++) {
            char path[PATH_MAX_LEN];
            snprintf(path, sizeof(path), "checks[%zu]", i);
            if (!cJSON_IsObject(c)) {
                errf(e,
                     "%s: expected an object like {\"name\": \"app\", \"url\": "
                     "\"http://127.0.0.1:8080/healthz\"}, got %s",
                     path, ha_json_type_name(c));
                goto out;
            }
            ha_check_config *cc = &out->checks[i];
            *cc = *defaults;
            out->n_checks = i + 1; /* owned from here: ha_config_free releases its type keys */
            if (apply_check(c, cJSON_GetObjectItemCaseSensitive(root, "defaults"), path, cc, e) !=
                0)
                goto out;
            if (cc->name[0] == '\0')
                default_name(cc);
        }
    }
    snprintf(out->source, sizeof(out->source), "%s", origin);
    rc = 0;
out:
    cJSON_Delete(root);
    return rc;
}

static int read_file(const char *path, const char *what, char **out, size_t *outlen, errbuf e)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return errf(e, "%s: cannot open %.200s: %s", what, path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
        fclose(f);
        return errf(e, "%s: %.200s is a directory; give the path of the JSON file", what, path);
    }
    char *buf = malloc(CONFIG_FILE_MAX + 1);
    if (!buf) {
        fclose(f);
        return errf(e, "%s: out of memory", what);
    }
    size_t n = fread(buf, 1, CONFIG_FILE_MAX + 1, f);
    int read_error = ferror(f);
    fclose(f);
    if (read_error) {
        free(buf);
        return errf(e, "%s: cannot read %.200s", what, path);
    }
    if (n > CONFIG_FILE_MAX) {
        free(buf);
        return errf(e, "%s: %.200s is larger than 1 MiB", what, path);
    }
    buf[n] = '\0';
    *out = buf;
    *outlen = n;
    return 0;
}

/* Picks the one JSON source; returns 1 if there is none, 0 with *json owned by the caller. */
static int load_json_source(const ha_config_inputs *in, char **json, size_t *len, char *origin,
                            size_t originlen, errbuf e)
{
    if (in->config_path) {
        snprintf(origin, originlen, "--config %s", in->config_path);
        return read_file(in->config_path, "--config", json, len, e);
    }
    bool has_file = in->env_file && *in->env_file;
    bool has_inline = in->env_inline && *in->env_inline;
    if (has_file && has_inline)
        return errf(e, "HEALTHAGG_CONFIG_FILE and HEALTHAGG_CONFIG are both set; keep one "
                       "(a --config flag would override both)");
    if (has_file) {
        snprintf(origin, originlen, "HEALTHAGG_CONFIG_FILE %s", in->env_file);
        return read_file(in->env_file, "HEALTHAGG_CONFIG_FILE", json, len, e);
    }
    if (has_inline) {
        snprintf(origin, originlen, "HEALTHAGG_CONFIG");
        *len = strlen(in->env_inline);
        *json = malloc(*len + 1);
        if (!*json)
            return errf(e, "HEALTHAGG_CONFIG: out of memory");
        memcpy(*json, in->env_inline, *len + 1);
        return 0;
    }
    return 1;
}

static int apply_listen(const char *text, const char *what, ha_config *out, errbuf e)
{
    char msg[HA_ERR_MAX];
    if (ha_parse_listen(text, out->listen_host, sizeof(out->listen_host), &out->listen_port, msg,
                        sizeof(msg)) != 0)
        return errf(e, "%s: %s", what, msg);
    return 0;
}

static int apply_flag_checks(const ha_config_inputs *in, ha_config *out,
                             const ha_check_config *defaults, const cJSON *defaults_json, errbuf e)
{
    if (in->n_flag_checks == 0)
        return 0;
    ha_check_config *grown =
        realloc(out->checks, (out->n_checks + in->n_flag_checks) * sizeof(*out->checks));
    if (!grown)
        return errf(e, "--check: out of memory");
    out->checks = grown;
    for (size_t i = 0; i < in->n_flag_checks; i++) {
        const char *arg = in->flag_checks[i];
        ha_check_config *c = &out->checks[out->n_checks];
        *c = *defaults;
        const char *scheme = strstr(arg, "://");
        const char *eq = strchr(arg, '=');
        const char *url = arg;
        if (eq && (!scheme || eq < scheme)) {
            size_t nlen = (size_t)(eq - arg);
            if (nlen == 0 || nlen >= sizeof(c->name))
                return errf(e, "--check %.80s: the name before '=' must be 1-%zu characters", arg,
                            sizeof(c->name) - 1);
            memcpy(c->name, arg, nlen);
            c->name[nlen] = '\0';
            url = eq + 1;
        }
        char msg[HA_ERR_MAX];
        out->n_checks++; /* owned from here: ha_config_free releases its type keys */
        if (ha_check_parse_url(c, url, msg, sizeof(msg)) != 0)
            return errf(e, "--check %.200s: %s", arg, msg);
        char path[PATH_MAX_LEN];
        snprintf(path, sizeof(path), "--check %.80s", arg);
        ha_key_source src = {defaults_json, NULL, path, e.buf, e.len};
        if (ha_check_parse_keys(c, &src) != 0)
            return -1;
        if (c->name[0] == '\0')
            default_name(c);
    }
    return 0;
}

typedef struct flag_overrides {
    bool interval, timeout, start_period, failure, success;
    uint64_t interval_ms, timeout_ms, start_period_ms;
    unsigned failure_threshold, success_threshold;
} flag_overrides;

static int parse_flag_overrides(const ha_config_inputs *in, flag_overrides *f, ha_config *out,
                                errbuf e)
{
    char msg[HA_ERR_MAX];
    memset(f, 0, sizeof(*f));
    struct {
        const char *text, *name;
        bool *set;
        uint64_t *ms;
    } durations[] = {
        {in->flag_interval, "--interval", &f->interval, &f->interval_ms},
        {in->flag_timeout, "--timeout", &f->timeout, &f->timeout_ms},
        {in->flag_start_period, "--start-period", &f->start_period, &f->start_period_ms},
        {in->flag_grace, "--grace", NULL, &out->grace_ms},
    };
    for (size_t i = 0; i < sizeof(durations) / sizeof(durations[0]); i++) {
        if (!durations[i].text)
            continue;
        if (ha_parse_duration(durations[i].text, durations[i].ms, msg, sizeof(msg)) != 0)
            return errf(e, "%s: %s", durations[i].name, msg);
        if (durations[i].set)
            *durations[i].set = true;
    }
    if (in->flag_failure_threshold) {
        if (ha_parse_uint(in->flag_failure_threshold, 1, 100, &f->failure_threshold, msg,
                          sizeof(msg)) != 0)
            return errf(e, "--failure-threshold: %s", msg);
        f->failure = true;
    }
    if (in->flag_success_threshold) {
        if (ha_parse_uint(in->flag_success_threshold, 1, 100, &f->success_threshold, msg,
                          sizeof(msg)) != 0)
            return errf(e, "--success-threshold: %s", msg);
        f->success = true;
    }
    return 0;
}

/* Brackets are allowed so that the default name of an IPv6 target, "[::1]:8080", is valid. */
static bool valid_name(const char *n)
{
    if (!*n)
        return false;
    for (const char *p = n; *p; p++)
        if (!(isalnum((unsigned char)*p) || strchr("_-.:[]", *p)))
            return false;
    return true;
}

/* Where a check's interval or timeout came from, for messages about a flag that conflicts with
 * it: the check's own key, the "defaults" object, or the built-in default. A check that sets
 * the same value as the default is described as the default: the value is what matters. */
static void value_origin(uint64_t value, uint64_t from_defaults, uint64_t builtin, size_t i,
                         const char *key, char *buf, size_t len)
{
    if (value != from_defaults)
        snprintf(buf, len, "checks[%zu].%s", i, key);
    else if (value == builtin)
        snprintf(buf, len, "the built-in default");
    else
        snprintf(buf, len, "defaults.%s", key);
}

/* --interval or --timeout alone can clash with the other value from the config or the
 * built-in default; the error then names the flag and that value's origin rather than blaming
 * a config field the user never wrote. */
static int check_flag_conflicts(const ha_config *c, const flag_overrides *f,
                                const ha_config_inputs *in, const ha_check_config *defaults,
                                errbuf e)
{
    if (!f->interval && !f->timeout)
        return 0;
    ha_check_config builtin;
    set_builtin_check_defaults(&builtin);
    for (size_t i = 0; i < c->n_checks; i++) {
        const ha_check_config *k = &c->checks[i];
        if (k->timeout_ms < k->interval_ms)
            continue;
        char value[32], origin[48];
        if (f->interval && f->timeout)
            return errf(e,
                        "--timeout %.32s must be shorter than --interval %.32s; lower the one or "
                        "raise the other",
                        in->flag_timeout, in->flag_interval);
        if (f->interval) {
            ha_format_duration(k->timeout_ms, value, sizeof(value));
            value_origin(k->timeout_ms, defaults->timeout_ms, builtin.timeout_ms, i, "timeout",
                         origin, sizeof(origin));
            return errf(e,
                        "--interval %.32s: must be longer than the timeout %s (%s) of check "
                        "\"%s\"; add --timeout with a shorter value or raise --interval",
                        in->flag_interval, value, origin, k->name);
        }
        ha_format_duration(k->interval_ms, value, sizeof(value));
        value_origin(k->interval_ms, defaults->interval_ms, builtin.interval_ms, i, "interval",
                     origin, sizeof(origin));
        return errf(e,
                    "--timeout %.32s: must be shorter than the interval %s (%s) of check \"%s\"; "
                    "lower --timeout or add --interval with a longer value",
                    in->flag_timeout, value, origin, k->name);
    }
    return 0;
}

static int validate(ha_config *c, errbuf e)
{
    if (c->n_checks == 0)
        return errf(e, "checks: no checks configured; add one with --check NAME=URL "
                       "(e.g. --check app=http://127.0.0.1:8080/healthz) or a \"checks\" list "
                       "in the config");
    for (size_t i = 0; i < c->n_checks; i++) {
        const ha_check_config *k = &c->checks[i];
        char iv[32], to[32];
        if (!valid_name(k->name))
            return errf(e,
                        "checks[%zu].name: \"%.64s\" may only use letters, digits and _ - . :", i,
                        k->name);
        for (size_t j = 0; j < i; j++)
            if (strcmp(c->checks[j].name, k->name) == 0)
                return errf(e,
                            "checks[%zu].name: \"%s\" is used twice; give each check its own "
                            "name (--check NAME=URL)",
                            i, k->name);
        if (k->interval_ms < 100)
            return errf(e, "checks[%zu].interval: must be at least 100ms (check \"%s\")", i,
                        k->name);
        if (k->timeout_ms < 10)
            return errf(e, "checks[%zu].timeout: must be at least 10ms (check \"%s\")", i, k->name);
        if (k->timeout_ms >= k->interval_ms) {
            ha_format_duration(k->interval_ms, iv, sizeof(iv));
            ha_format_duration(k->timeout_ms, to, sizeof(to));
            return errf(e,
                        "checks[%zu].timeout: %s must be shorter than the interval %s (check "
                        "\"%s\"); lower the timeout or raise the interval",
                        i, to, iv, k->name);
        }
        if (k->start_interval_ms != 0 &&
            (k->start_interval_ms < 100 || k->start_interval_ms > k->interval_ms)) {
            ha_format_duration(k->interval_ms, iv, sizeof(iv));
            ha_format_duration(k->start_interval_ms, to, sizeof(to));
            return errf(e,
                        "checks[%zu].start_interval: %s must be between 100ms and the interval "
                        "%s (check \"%s\"); 0 turns it off",
                        i, to, iv, k->name);
        }
        if (k->container[0] && !valid_name(k->container))
            return errf(e,
                        "checks[%zu].container: \"%.64s\" is not an ECS container name "
                        "(letters, digits, _ and -)",
                        i, k->container);
    }
    return build_groups(c, e);
}

int ha_config_parse_json(const char *json, size_t len, const char *origin, ha_config *out,
                         char *err, size_t errlen)
{
    errbuf e = {err, errlen};
    ha_check_config defaults;
    set_builtin_defaults(out);
    set_builtin_check_defaults(&defaults);
    if (apply_json(json, len, origin, out, &defaults, NULL, e) != 0 || validate(out, e) != 0) {
        ha_config_free(out);
        return -1;
    }
    return 0;
}

int ha_config_load(const ha_config_inputs *in, ha_config *out, char *err, size_t errlen)
{
    errbuf e = {err, errlen};
    ha_check_config defaults;
    set_builtin_defaults(out);
    set_builtin_check_defaults(&defaults);

    char *json = NULL;
    size_t len = 0;
    char origin[sizeof(out->source)];
    cJSON *defaults_json = NULL; /* the JSON "defaults", applied to --check flags too */
    int src = load_json_source(in, &json, &len, origin, sizeof(origin), e);
    if (src < 0)
        goto fail;
    if (src == 0) {
        int rc = apply_json(json, len, origin, out, &defaults, &defaults_json, e);
        free(json);
        if (rc != 0)
            goto fail;
    }
    if (in->env_listen && *in->env_listen &&
        apply_listen(in->env_listen, "HEALTHAGG_LISTEN", out, e) != 0)
        goto fail;
    if (in->flag_listen && apply_listen(in->flag_listen, "--listen", out, e) != 0)
        goto fail;

    flag_overrides f;
    if (parse_flag_overrides(in, &f, out, e) != 0 ||
        apply_flag_checks(in, out, &defaults, defaults_json, e) != 0)
        goto fail;
    for (size_t i = 0; i < out->n_checks; i++) {
        ha_check_config *c = &out->checks[i];
        if (f.interval)
            c->interval_ms = f.interval_ms;
        if (f.timeout)
            c->timeout_ms = f.timeout_ms;
        if (f.start_period)
            c->start_period_ms = f.start_period_ms;
        if (f.failure)
            c->failure_threshold = f.failure_threshold;
        if (f.success)
            c->success_threshold = f.success_threshold;
    }
    if (check_flag_conflicts(out, &f, in, &defaults, e) != 0 || validate(out, e) != 0)
        goto fail;
    cJSON_Delete(defaults_json);
    return 0;
fail:
    cJSON_Delete(defaults_json);
    ha_config_free(out);
    return -1;
}

int ha_config_listen_only(const ha_config_inputs *in, char *host, size_t hostlen, uint16_t *port,
                          char *err, size_t errlen)
{
    errbuf e = {err, errlen};
    char msg[HA_ERR_MAX];
    snprintf(host, hostlen, "127.0.0.1");
    *port = 8099;
    if (in->env_listen && *in->env_listen) {
        if (ha_parse_listen(in->env_listen, host, hostlen, port, msg, sizeof(msg)) != 0)
            return errf(e, "HEALTHAGG_LISTEN: %s", msg);
        return 0;
    }
    char *json = NULL;
    size_t len = 0;
    char origin[96];
    int src = load_json_source(in, &json, &len, origin, sizeof(origin), e);
    if (src != 0)
        return src < 0 ? -1 : 0;
    cJSON *root = parse_document(json, len, origin, e);
    free(json);
    if (!root)
        return -1;
    int rc = 0;
    const cJSON *v = cJSON_IsObject(root) ? cJSON_GetObjectItemCaseSensitive(root, "listen") : NULL;
    if (v) {
        if (!cJSON_IsString(v))
            rc = errf(e, "listen: expected a string like \"127.0.0.1:8099\"");
        else if (ha_parse_listen(v->valuestring, host, hostlen, port, msg, sizeof(msg)) != 0)
            rc = errf(e, "listen: %s", msg);
    }
    cJSON_Delete(root);
    return rc;
}

void ha_config_free(ha_config *c)
{
    for (size_t g = 0; c->groups && g < c->n_groups; g++) {
        free(c->groups[g].members);
        free(c->groups[g].member_bits);
    }
    free(c->groups);
    c->groups = NULL;
    c->n_groups = 0;
    for (size_t i = 0; c->checks && i < c->n_checks; i++)
        ha_check_config_release(&c->checks[i]);
    free(c->checks);
    c->checks = NULL;
    c->n_checks = 0;
}
