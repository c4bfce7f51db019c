/* json_cond.c - `expect_json`: the path parser, the condition list parser and the evaluator
 * (see json_cond.h for the syntax and the reasons).
 *
 * Owns: paths (parsed once at load into segments, so a probe only walks the tree), the
 * conditions' wanted values, and the text of reasons. Trade-off: the body is parsed whole with
 * cJSON on every probe that has conditions - a tree allocation per probe, bounded by
 * max_response_bytes - rather than streamed; a streaming matcher would save the allocation but
 * could not answer "not JSON" or compare whole objects as simply, and health bodies are small. */
#include "healthagg/check_type.h"
#include "healthagg/json_cond.h"

#include "healthagg/quote.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SHOWN_MAX 72 /* bytes of a value shown in a reason */

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

/* --- paths -------------------------------------------------------------------------------- */

void ha_json_path_free(ha_json_path *p)
{
    for (size_t i = 0; i < p->n; i++)
        free(p->seg[i].key);
    free(p->text);
    memset(p, 0, sizeof(*p));
}

static bool plain_name_char(unsigned char c)
{
    return c > 0x20 && c != 0x7f && c != '.' && c != '[' && c != ']';
}

/* A segment's member name from s[0..len), or with escapes resolved for a quoted one. */
static char *dup_key(const char *s, size_t len)
{
    char *k = malloc(len + 1);
    if (k) {
        memcpy(k, s, len);
        k[len] = '\0';
    }
    return k;
}

int ha_json_path_parse(const char *text, ha_json_path *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    size_t tlen = strlen(text);
    char shown[48];
    if (tlen > HA_JSON_PATH_MAX_LEN)
        return fail(err, errlen, "longer than %d bytes", HA_JSON_PATH_MAX_LEN);
    if (text[0] != '$')
        return fail(err, errlen, "a path starts with $ (the document), e.g. \"$.status\"");
    size_t i = 1;
    while (i < tlen) {
        if (out->n == HA_JSON_PATH_MAX_SEGMENTS) {
            fail(err, errlen, "more than %d steps", HA_JSON_PATH_MAX_SEGMENTS);
            goto bad;
        }
        ha_json_segment *seg = &out->seg[out->n];
        if (text[i] == '.') {
            size_t start = ++i;
            while (i < tlen && plain_name_char((unsigned char)text[i]))
                i++;
            if (i == start) {
                ha_quote(shown, sizeof(shown), text + start, tlen - start);
                fail(err, errlen,
                     "a name must follow \".\" at byte %zu (saw \"%s\"); for names with "
                     "dots, brackets or spaces write [\"name\"]",
                     start, shown);
                goto bad;
            }
            if (!(seg->key = dup_key(text + start, i - start)))
                goto oom;
            out->n++;
        } else if (text[i] == '[' && i + 1 < tlen && (text[i + 1] == '"' || text[i + 1] == '\'')) {
            char quote = text[i + 1];
            size_t at = i;
            char *key = malloc(tlen);
            size_t klen = 0;
            if (!key)
                goto oom;
            for (i += 2; i < tlen && text[i] != quote; i++) {
                if (text[i] == '\\' && i + 1 < tlen &&
                    (text[i + 1] == quote || text[i + 1] == '\\'))
                    i++;
                key[klen++] = text[i];
            }
            if (i + 1 >= tlen || text[i + 1] != ']') {
                free(key);
                fail(err, errlen, "the [%c...%c] at byte %zu is not closed by %c]", quote, quote,
                     at, quote);
                goto bad;
            }
            key[klen] = '\0';
            seg->key = key;
            out->n++;
            i += 2;
        } else if (text[i] == '[') {
            size_t at = i++;
            bool neg = i < tlen && text[i] == '-';
            if (neg)
                i++;
            size_t digits = 0;
            long v = 0;
            while (i < tlen && text[i] >= '0' && text[i] <= '9' && digits < 10) {
                v = v * 10 + (text[i++] - '0');
                digits++;
            }
            if (digits == 0 || digits == 10 || i >= tlen || text[i] != ']') {
                ha_quote(shown, sizeof(shown), text + at, tlen - at);
                fail(err, errlen,
                     "\"%s\" at byte %zu: an index is [N] (from 0; [-1] is the last) and a "
                     "member name [\"name\"]",
                     shown, at);
                goto bad;
            }
            if (neg && v == 0) {
                fail(err, errlen, "[-0] at byte %zu: the last element is [-1]", at);
                goto bad;
            }
            i++;
            seg->index = neg ? -v : v;
            out->n++;
        } else {
            ha_quote(shown, sizeof(shown), text + i, tlen - i);
            fail(err, errlen, "unexpected \"%s\" at byte %zu; steps are .name, [\"name\"] or [N]",
                 shown, i);
            goto bad;
        }
    }
    /* As reasons show it: printable, valid UTF-8 (the config is checked to be UTF-8, but this
     * parser also takes what the fuzzer gives it). */
    char printable[HA_JSON_PATH_MAX_LEN * 4 + 8];
    ha_printable(printable, sizeof(printable), text, tlen);
    if (!(out->text = dup_key(printable, strlen(printable))))
        goto oom;
    return 0;
oom:
    fail(err, errlen, "out of memory");
bad:
    ha_json_path_free(out);
    return -1;
}

const cJSON *ha_json_path_get(const ha_json_path *p, const cJSON *doc)
{
    const cJSON *v = doc;
    for (size_t i = 0; v && i < p->n; i++) {
        const ha_json_segment *s = &p->seg[i];
        if (s->key) {
            v = cJSON_IsObject(v) ? cJSON_GetObjectItemCaseSensitive(v, s->key) : NULL;
        } else if (cJSON_IsArray(v)) {
            long n = (long)cJSON_GetArraySize(v), idx = s->index < 0 ? n + s->index : s->index;
            v = idx >= 0 && idx < n ? cJSON_GetArrayItem(v, (int)idx) : NULL;
        } else {
            v = NULL;
        }
    }
    return v;
}

/* --- showing values ----------------------------------------------------------------------- */

/* The shortest text that reads back as d (340, not 340.000000 or 3.4e+02). */
static void format_number(double d, char *buf, size_t len)
{
    if (!isfinite(d)) {
        snprintf(buf, len, "%s", isnan(d) ? "NaN" : d > 0 ? "Infinity" : "-Infinity");
        return;
    }
    if (d == floor(d) && fabs(d) < 1e15) { /* whole numbers as integers: 340, not 3.4e+02 */
        snprintf(buf, len, "%.0f", d);
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, len, "%.*g", prec, d);
        if (strtod(buf, NULL) == d)
            return;
    }
}

/* A JSON value as a reason shows it: strings quoted and escaped, numbers short, containers
 * as compact JSON, all cut at SHOWN_MAX bytes. */
static void show_value(const cJSON *v, char *buf, size_t len)
{
    char tmp[SHOWN_MAX];
    if (cJSON_IsString(v)) {
        ha_quote(tmp, sizeof(tmp), v->valuestring, strlen(v->valuestring));
        snprintf(buf, len, "\"%s\"", tmp);
    } else if (cJSON_IsNumber(v)) {
        format_number(v->valuedouble, buf, len);
    } else if (cJSON_IsTrue(v)) {
        snprintf(buf, len, "true");
    } else if (cJSON_IsFalse(v)) {
        snprintf(buf, len, "false");
    } else if (cJSON_IsNull(v)) {
        snprintf(buf, len, "null");
    } else {
        char *text = cJSON_PrintUnformatted(v);
        if (text) {
            ha_printable(buf, len < SHOWN_MAX ? len : SHOWN_MAX, text, strlen(text));
            free(text);
        } else {
            snprintf(buf, len, cJSON_IsArray(v) ? "an array" : "an object");
        }
    }
}

/* --- the condition list ------------------------------------------------------------------- */

static const char *const op_keys[] = {"equals", "not_equals", "lt", "le", "gt", "ge", "exists"};
#define N_OPS (sizeof(op_keys) / sizeof(op_keys[0]))
static const char *const op_symbols[] = {"", "", "<", "<=", ">", ">=", ""};

static void cond_free(ha_json_cond *c)
{
    ha_json_path_free(&c->path);
    cJSON_Delete(c->want);
    free(c->want_text);
    memset(c, 0, sizeof(*c));
}

void ha_json_conds_free(ha_json_conds *c)
{
    for (size_t i = 0; i < c->n; i++)
        cond_free(&c->items[i]);
    free(c->items);
    c->items = NULL;
    c->n = 0;
}

static int parse_one(const cJSON *o, const char *where, ha_json_cond *c, char *err, size_t errlen)
{
    if (!cJSON_IsObject(o))
        return fail(err, errlen,
                    "%s: expected an object like {\"path\": \"$.status\", \"equals\": \"UP\"}, "
                    "got %s",
                    where, ha_json_type_name(o));
    const cJSON *path = NULL, *opv = NULL;
    for (const cJSON *it = o->child; it; it = it->next) {
        for (const cJSON *prev = o->child; prev != it; prev = prev->next)
            if (strcmp(prev->string, it->string) == 0) {
                char dup[72];
                ha_quote(dup, sizeof(dup), it->string, strlen(it->string));
                return fail(err, errlen, "%s.%s: key appears twice; keep one", where, dup);
            }
        if (strcmp(it->string, "path") == 0) {
            path = it;
            continue;
        }
        size_t k = 0;
        while (k < N_OPS && strcmp(op_keys[k], it->string) != 0)
            k++;
        if (k == N_OPS) {
            char shown[72];
            ha_quote(shown, sizeof(shown), it->string, strlen(it->string));
            return fail(err, errlen,
                        "%s.%s: unknown key; valid keys are path and one of equals, "
                        "not_equals, lt, le, gt, ge, exists",
                        where, shown);
        }
        if (opv)
            return fail(err, errlen,
                        "%s: both \"%s\" and \"%s\"; give one condition per entry (add another "
                        "entry for the second)",
                        where, opv->string, it->string);
        opv = it;
        c->op = (ha_json_op)k;
    }
    if (!path)
        return fail(err, errlen,
                    "%s.path: missing; e.g. {\"path\": \"$.status\", \"equals\": "
                    "\"UP\"}",
                    where);
    if (!cJSON_IsString(path))
        return fail(err, errlen, "%s.path: expected a string like \"$.status\", got %s", where,
                    ha_json_type_name(path));
    if (!opv)
        return fail(err, errlen,
                    "%s: no condition; add one of equals, not_equals, lt, le, gt, ge, exists",
                    where);
    char why[160];
    if (ha_json_path_parse(path->valuestring, &c->path, why, sizeof(why)) != 0)
        return fail(err, errlen, "%s.path: %s", where, why);
    char shown[SHOWN_MAX + 8];
    switch (c->op) {
    case HA_JSON_EQ:
    case HA_JSON_NE:
        if (!(c->want = cJSON_Duplicate(opv, true)))
            return fail(err, errlen, "%s: out of memory", where);
        show_value(opv, shown, sizeof(shown));
        break;
    case HA_JSON_LT:
    case HA_JSON_LE:
    case HA_JSON_GT:
    case HA_JSON_GE:
        if (!cJSON_IsNumber(opv))
            return fail(err, errlen, "%s.%s: expected a number, got %s", where, opv->string,
                        ha_json_type_name(opv));
        c->number = opv->valuedouble;
        format_number(c->number, shown, sizeof(shown));
        break;
    case HA_JSON_EXISTS:
        if (!cJSON_IsBool(opv))
            return fail(err, errlen, "%s.exists: expected true or false, got %s", where,
                        ha_json_type_name(opv));
        c->exists = cJSON_IsTrue(opv);
        snprintf(shown, sizeof(shown), "%s", c->exists ? "true" : "false");
        break;
    }
    if (!(c->want_text = dup_key(shown, strlen(shown))))
        return fail(err, errlen, "%s: out of memory", where);
    return 0;
}

int ha_json_conds_parse(const cJSON *list, const char *where, ha_json_conds *out, char *err,
                        size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (!cJSON_IsArray(list))
        return fail(err, errlen,
                    "%s: expected a list of conditions like [{\"path\": \"$.status\", "
                    "\"equals\": \"UP\"}], got %s",
                    where, ha_json_type_name(list));
    size_t n = (size_t)cJSON_GetArraySize(list);
    if (n == 0 || n > HA_JSON_COND_MAX)
        return fail(err, errlen, "%s: give 1 to %d conditions", where, HA_JSON_COND_MAX);
    if (!(out->items = calloc(n, sizeof(*out->items))))
        return fail(err, errlen, "%s: out of memory", where);
    size_t i = 0;
    for (const cJSON *it = list->child; it; it = it->next, i++) {
        char at[256];
        snprintf(at, sizeof(at), "%s[%zu]", where, i);
        out->n = i + 1; /* owned from here */
        if (parse_one(it, at, &out->items[i], err, errlen) != 0) {
            ha_json_conds_free(out);
            return -1;
        }
    }
    return 0;
}

void ha_json_conds_describe(const ha_json_conds *c, const char *key, cJSON *out)
{
    if (c->n == 0)
        return;
    cJSON *arr = cJSON_AddArrayToObject(out, key);
    for (size_t i = 0; arr && i < c->n; i++) {
        const ha_json_cond *k = &c->items[i];
        cJSON *o = cJSON_CreateObject();
        if (!o)
            return;
        cJSON_AddItemToArray(arr, o);
        cJSON_AddStringToObject(o, "path", k->path.text);
        const char *op = op_keys[k->op];
        if (k->op == HA_JSON_EQ || k->op == HA_JSON_NE)
            cJSON_AddItemToObject(o, op, cJSON_Duplicate(k->want, true));
        else if (k->op == HA_JSON_EXISTS)
            cJSON_AddBoolToObject(o, op, k->exists);
        else
            cJSON_AddNumberToObject(o, op, k->number);
    }
}

/* --- evaluation --------------------------------------------------------------------------- */

static bool only_space(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r')
            return false;
    return true;
}

static void not_json(const char *body, size_t len, size_t at, const char *what, bool truncated,
                     size_t cap, char *buf, size_t buflen)
{
    if (truncated) {
        snprintf(buf, buflen,
                 "body is not JSON: cut at max_response_bytes (%zu) before it ended; raise "
                 "max_response_bytes",
                 cap);
        return;
    }
    if (only_space(body, len)) {
        snprintf(buf, buflen, "body is not JSON: %s", len ? "only whitespace" : "empty body");
        return;
    }
    char near[40];
    ha_quote(near, sizeof(near), body + at, len - at < 24 ? len - at : 24);
    snprintf(buf, buflen, "body is not JSON: %s at byte %zu of %zu (near \"%s\")", what, at, len,
             near);
}

/* One condition against the parsed document; false with the reason in buf when it fails. */
static bool check_one(const ha_json_cond *c, const cJSON *doc, char *buf, size_t buflen)
{
    const cJSON *v = ha_json_path_get(&c->path, doc);
    const char *p = c->path.text;
    char seen[SHOWN_MAX + 8];
    if (c->op == HA_JSON_EXISTS) {
        if (!v == !c->exists)
            return true;
        if (!v) {
            snprintf(buf, buflen, "%s does not exist", p);
        } else {
            show_value(v, seen, sizeof(seen));
            snprintf(buf, buflen, "%s is %s, want it absent", p, seen);
        }
        return false;
    }
    const char *sym = op_symbols[c->op];
    if (!v) {
        snprintf(buf, buflen, "%s does not exist, want %s%s%s", p,
                 c->op == HA_JSON_NE ? "anything but " : sym, *sym ? " " : "", c->want_text);
        return false;
    }
    bool ok;
    switch (c->op) {
    case HA_JSON_EQ:
        ok = cJSON_Compare(v, c->want, true);
        break;
    case HA_JSON_NE:
        ok = !cJSON_Compare(v, c->want, true);
        break;
    default:
        if (!cJSON_IsNumber(v)) {
            show_value(v, seen, sizeof(seen));
            snprintf(buf, buflen, "%s is %s, want a number %s %s", p, seen, sym, c->want_text);
            return false;
        }
        double d = v->valuedouble;
        ok = c->op == HA_JSON_LT   ? d < c->number
             : c->op == HA_JSON_LE ? d <= c->number
             : c->op == HA_JSON_GT ? d > c->number
                                   : d >= c->number;
        break;
    }
    if (ok)
        return true;
    show_value(v, seen, sizeof(seen));
    if (c->op == HA_JSON_EQ)
        snprintf(buf, buflen, "%s is %s, want %s", p, seen, c->want_text);
    else if (c->op == HA_JSON_NE)
        snprintf(buf, buflen, "%s is %s, want anything but %s", p, seen, c->want_text);
    else
        snprintf(buf, buflen, "%s is %s, want %s %s", p, seen, sym, c->want_text);
    return false;
}

bool ha_json_conds_eval(const ha_json_conds *c, const char *body, size_t len, bool truncated,
                        size_t cap, char *buf, size_t buflen)
{
    const char *end = NULL;
    cJSON *doc = cJSON_ParseWithLengthOpts(body, len, &end, false);
    size_t at = end && end >= body && end <= body + len ? (size_t)(end - body) : len;
    if (!doc) {
        not_json(body, len, at, "invalid", truncated, cap, buf, buflen);
        ha_utf8_trim_partial(buf);
        return false;
    }
    if (!only_space(body + at, len - at)) {
        while (at < len &&
               (body[at] == ' ' || body[at] == '\t' || body[at] == '\n' || body[at] == '\r'))
            at++;
        cJSON_Delete(doc);
        not_json(body, len, at, "text after the document", truncated, cap, buf, buflen);
        ha_utf8_trim_partial(buf);
        return false;
    }
    bool ok = true;
    for (size_t i = 0; ok && i < c->n; i++)
        ok = check_one(&c->items[i], doc, buf, buflen);
    cJSON_Delete(doc);
    if (!ok)
        ha_utf8_trim_partial(buf);
    return ok;
}
