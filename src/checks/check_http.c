/* check_http.c - http:// checks: send one prebuilt request, parse the answer with llhttp.
 *
 * The request bytes are built once per probe, the parser lives in the probe's type state, so
 * a check cycle allocates nothing. The verdict is taken at the end of the message, at EOF, or
 * once `max_response_bytes` have been read (status decides then: a health endpoint that
 * streams forever is judged by its status line, as Kubernetes does, not read to the end).
 * The body, when `expect_body` is set, is searched incrementally (KMP), so a match that
 * straddles two reads is still found without buffering the body. `expect_body_regex` (POSIX
 * ERE, compiled at load) and `expect_json` (json_cond.c) need the whole body: only then is it
 * kept, up to max_response_bytes, in a buffer that grows once and is reused, so the cost of
 * those keys falls on the checks that use them. `warn_latency` marks a passing probe degraded.
 * The type is transport-blind: https:// is this same code over the TLS transport. */
#include "healthagg/check.h"
#include "healthagg/json_cond.h"
#include "healthagg/quote.h"
#include "healthagg/secrets.h"

#include <llhttp.h>
#include <math.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HTTP_EXPECT_MAX 16
#define HTTP_BODY_MATCH_MAX 256
#define HTTP_REGEX_MAX 1024

typedef struct http_cfg {
    bool method_head; /* HEAD instead of GET */
    ha_status_range expect[HTTP_EXPECT_MAX];
    size_t n_expect;
    char expect_body[HTTP_BODY_MATCH_MAX]; /* substring the body must contain; "" = any */
    uint32_t max_response_bytes;           /* bytes read before the verdict is taken */
    ha_secret_map headers;                 /* extra request headers, values secret */
    char body_regex_text[HTTP_REGEX_MAX];  /* expect_body_regex as written; "" = none */
    regex_t body_regex;                    /* compiled once at load */
    ha_json_conds json;                    /* expect_json; n == 0: none */
    uint64_t warn_latency_ms;              /* 0 = off */
} http_cfg;

typedef struct http_state {
    char *request; /* prebuilt request bytes, owned */
    size_t request_len;
    llhttp_t parser;
    bool headers_done;
    bool message_done;
    int interim_status;    /* last 1xx answer seen (100 Continue, 103 Early Hints); 0: none */
    bool after_interim;    /* that interim answer ended and nothing of the next one came yet */
    size_t body_match_pos; /* KMP state over expect_body */
    bool body_matched;
    uint16_t *kmp; /* failure table for expect_body, owned */
    /* The body, kept only when a regex or expect_json needs it: grown on demand up to
     * max_response_bytes + 1 and kept across attempts, so steady state allocates nothing. */
    char *body;
    size_t body_len, body_cap;
    bool body_oom; /* could not grow the buffer: the attempt is inconclusive */
} http_state;

static const char *const http_keys[] = {
    "method",      "expect_status",      "expect_body", "expect_body_regex",
    "expect_json", "max_response_bytes", "headers",     "warn_latency",
    NULL};

static bool needs_body(const http_cfg *h)
{
    return h->body_regex_text[0] || h->json.n;
}

/* Headers that frame the exchange: healthagg sends one request and reads one answer on a
 * connection it closes, so these are its own to set. */
static const char *const reserved_headers[] = {
    "Connection", "Content-Length", "Transfer-Encoding", "Upgrade",
    "TE",         "Trailer",        "Keep-Alive",        NULL};

static bool status_expected(const http_cfg *h, int status)
{
    for (size_t i = 0; i < h->n_expect; i++)
        if (status >= h->expect[i].lo && status <= h->expect[i].hi)
            return true;
    return false;
}

/* --- config ------------------------------------------------------------------------------- */

static int parse_expect_status(const ha_key_source *src, http_cfg *h)
{
    char path[160];
    const cJSON *v = ha_key_find(src, "expect_status", path, sizeof(path));
    if (!v)
        return 0;
    size_t count = cJSON_IsArray(v) ? (size_t)cJSON_GetArraySize(v) : 1;
    if (count == 0 || count > HTTP_EXPECT_MAX)
        return ha_key_error(src, "%s: give 1 to %d status codes or ranges", path, HTTP_EXPECT_MAX);
    const cJSON *it = cJSON_IsArray(v) ? v->child : v;
    for (size_t i = 0; i < count; i++, it = it->next) {
        char msg[HA_ERR_MAX], text[32];
        if (cJSON_IsNumber(it) && it->valuedouble == floor(it->valuedouble) &&
            fabs(it->valuedouble) < 1e6) {
            snprintf(text, sizeof(text), "%d", (int)it->valuedouble);
        } else if (cJSON_IsString(it) && strlen(it->valuestring) < sizeof(text)) {
            strcpy(text, it->valuestring);
        } else {
            return ha_key_error(src,
                                "%s[%zu]: expected a status like 200, \"200-399\" or \"2xx\", "
                                "got %s",
                                path, i, ha_json_type_name(it));
        }
        if (ha_parse_status_range(text, &h->expect[i], msg, sizeof(msg)) != 0)
            return ha_key_error(src, "%s[%zu]: %s", path, i, msg);
    }
    h->n_expect = count;
    return 0;
}

static int parse_headers(const ha_key_source *src, http_cfg *h)
{
    char path[160];
    const cJSON *v = ha_key_find(src, "headers", path, sizeof(path));
    if (!v)
        return 0;
    if (ha_secret_map_parse(v, path, NULL, &h->headers, src->err, src->errlen) != 0)
        return -1;
    for (size_t i = 0; reserved_headers[i]; i++)
        if (ha_secret_map_get(&h->headers, reserved_headers[i]))
            return ha_key_error(src,
                                "%s.%s: healthagg sets this header itself (one request per "
                                "connection); remove it",
                                path, ha_secret_map_get(&h->headers, reserved_headers[i])->name);
    return 0;
}

/* expect_body_regex: POSIX ERE, compiled here once; errors quote regerror(). */
static int parse_regex(const ha_key_source *src, http_cfg *h)
{
    char path[160];
    int rc =
        ha_key_string(src, "expect_body_regex", h->body_regex_text, sizeof(h->body_regex_text));
    if (rc != 0)
        return rc < 0 ? -1 : 0;
    ha_key_find(src, "expect_body_regex", path, sizeof(path));
    if (!h->body_regex_text[0])
        return ha_key_error(src, "%s: empty; leave it out to accept any body", path);
    int err = regcomp(&h->body_regex, h->body_regex_text, REG_EXTENDED | REG_NOSUB | REG_NEWLINE);
    if (err != 0) {
        char why[128], shown[96];
        regerror(err, &h->body_regex, why, sizeof(why));
        ha_quote(shown, sizeof(shown), h->body_regex_text, strlen(h->body_regex_text));
        h->body_regex_text[0] = '\0'; /* nothing compiled: free_cfg must not regfree */
        return ha_key_error(src, "%s: \"%s\" is not a valid POSIX extended regex: %s", path, shown,
                            why);
    }
    return 0;
}

static int parse_json_conds(const ha_key_source *src, http_cfg *h)
{
    char path[160];
    const cJSON *v = ha_key_find(src, "expect_json", path, sizeof(path));
    if (!v)
        return 0;
    return ha_json_conds_parse(v, path, &h->json, src->err, src->errlen);
}

static void http_free_cfg(void *cfg)
{
    http_cfg *h = cfg;
    ha_secret_map_free(&h->headers);
    if (h->body_regex_text[0])
        regfree(&h->body_regex);
    ha_json_conds_free(&h->json);
}

static int http_parse(ha_check_config *c, const ha_key_source *src)
{
    http_cfg *h = c->type_cfg;
    h->expect[0].lo = 200;
    h->expect[0].hi = 399;
    h->n_expect = 1;
    h->max_response_bytes = 64 * 1024;
    char path[160], method[8] = "GET";
    int rc;
    if ((rc = ha_key_string(src, "method", method, sizeof(method))) < 0)
        return -1;
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        ha_key_find(src, "method", path, sizeof(path));
        return ha_key_error(src, "%s: expected \"GET\" or \"HEAD\"", path);
    }
    h->method_head = strcmp(method, "HEAD") == 0;
    if (parse_expect_status(src, h) != 0)
        return -1;
    if (ha_key_string(src, "expect_body", h->expect_body, sizeof(h->expect_body)) < 0)
        return -1;
    unsigned n = h->max_response_bytes;
    if (ha_key_uint(src, "max_response_bytes", 256, 16 * 1024 * 1024, &n) < 0)
        return -1;
    h->max_response_bytes = n;
    if (parse_headers(src, h) != 0 || parse_regex(src, h) != 0 || parse_json_conds(src, h) != 0)
        return -1;
    if (ha_key_duration(src, "warn_latency", &h->warn_latency_ms) < 0)
        return -1;
    static const char *const body_keys[] = {"expect_body", "expect_body_regex", "expect_json"};
    bool has[] = {h->expect_body[0] != '\0', h->body_regex_text[0] != '\0', h->json.n > 0};
    for (size_t i = 0; h->method_head && i < sizeof(has) / sizeof(has[0]); i++)
        if (has[i])
            return ha_key_error(src,
                                "%s.%s: a HEAD response has no body; use \"method\": "
                                "\"GET\" (check \"%s\")",
                                src->path, body_keys[i], c->name);
    return 0;
}

static void http_describe(const ha_check_config *c, cJSON *out)
{
    const http_cfg *h = c->type_cfg;
    cJSON_AddStringToObject(out, "method", h->method_head ? "HEAD" : "GET");
    cJSON *st = cJSON_AddArrayToObject(out, "expect_status");
    for (size_t i = 0; st && i < h->n_expect; i++) {
        char buf[16];
        if (h->expect[i].lo == h->expect[i].hi)
            snprintf(buf, sizeof(buf), "%u", (unsigned)h->expect[i].lo);
        else
            snprintf(buf, sizeof(buf), "%u-%u", (unsigned)h->expect[i].lo,
                     (unsigned)h->expect[i].hi);
        cJSON_AddItemToArray(st, cJSON_CreateString(buf));
    }
    if (h->expect_body[0])
        cJSON_AddStringToObject(out, "expect_body", h->expect_body);
    if (h->body_regex_text[0])
        cJSON_AddStringToObject(out, "expect_body_regex", h->body_regex_text);
    ha_json_conds_describe(&h->json, "expect_json", out);
    cJSON_AddNumberToObject(out, "max_response_bytes", h->max_response_bytes);
    if (h->warn_latency_ms)
        cJSON_AddNumberToObject(out, "warn_latency_ms", (double)h->warn_latency_ms);
    ha_secret_map_describe(&h->headers, "headers", out);
}

/* --- response parsing --------------------------------------------------------------------- */

static int on_message_begin(llhttp_t *parser)
{
    ha_probe *p = parser->data;
    http_state *s = p->type_state;
    s->after_interim = false;
    return 0;
}

static int on_headers_complete(llhttp_t *parser)
{
    ha_probe *p = parser->data;
    http_state *s = p->type_state;
    const http_cfg *h = p->cfg->type_cfg;
    int status = parser->status_code;
    if (status >= 100 && status < 200) {
        s->interim_status = status;
        return 0; /* interim response: the real one follows */
    }
    s->headers_done = true;
    /* 1: no body. A HEAD answer has none, and neither has a 204 or 304, whatever its
     * Content-Length says (RFC 9112 section 6.3): waiting for one would time out. */
    return h->method_head || status == 204 || status == 304 ? 1 : 0;
}

/* Appends to the kept body. http_on_data feeds llhttp at most max_response_bytes in all, so
 * the body never outgrows max_response_bytes (+1 for the NUL regexec needs). */
static void keep_body(http_state *s, const http_cfg *h, const char *at, size_t len)
{
    size_t limit = (size_t)h->max_response_bytes + 1;
    if (s->body_len + len + 1 > s->body_cap && s->body_cap < limit) {
        size_t cap = s->body_cap ? s->body_cap : 4096;
        while (cap < s->body_len + len + 1 && cap < limit)
            cap *= 2;
        if (cap > limit)
            cap = limit;
        char *grown = realloc(s->body, cap);
        if (!grown) {
            s->body_oom = true;
            return;
        }
        s->body = grown;
        s->body_cap = cap;
    }
    if (len > s->body_cap - 1 - s->body_len) /* cannot happen (see above); never overflow */
        len = s->body_cap - 1 - s->body_len;
    memcpy(s->body + s->body_len, at, len);
    s->body_len += len;
}

static int on_body(llhttp_t *parser, const char *at, size_t len)
{
    ha_probe *p = parser->data;
    http_state *s = p->type_state;
    const http_cfg *h = p->cfg->type_cfg;
    if (needs_body(h) && !s->body_oom)
        keep_body(s, h, at, len);
    const char *needle = h->expect_body;
    if (!needle[0] || s->body_matched)
        return 0;
    size_t m = strlen(needle), q = s->body_match_pos;
    for (size_t i = 0; i < len; i++) {
        while (q > 0 && needle[q] != at[i])
            q = s->kmp[q - 1];
        if (needle[q] == at[i])
            q++;
        if (q == m) {
            s->body_matched = true;
            break;
        }
    }
    s->body_match_pos = q;
    return 0;
}

static int on_message_complete(llhttp_t *parser)
{
    ha_probe *p = parser->data;
    http_state *s = p->type_state;
    if (parser->status_code >= 100 && parser->status_code < 200) {
        s->after_interim = true;
        return 0;
    }
    s->message_done = true;
    p->close_reset = true; /* a complete answer: close with RST, leave no TIME_WAIT */
    return HPE_PAUSED;     /* stop: anything after the answer is not ours to read */
}

static const llhttp_settings_t http_settings = {
    .on_message_begin = on_message_begin,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

static void http_finish(ha_probe *p, bool ok, int status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Every verdict of this type goes out through here: a reason may quote what the target sent,
 * and a target that echoes a request header must not get a secret into logs or /health. */
static void http_finish(ha_probe *p, bool ok, int status, const char *fmt, ...)
{
    const http_cfg *h = p->cfg->type_cfg;
    char reason[HA_REASON_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    ha_utf8_trim_partial(reason);
    if (h->headers.n_scrub)
        ha_secret_scrub(&h->headers, reason, sizeof(reason));
    ha_probe_finish(p, ok, status, "%s", reason);
}

/* expect_body_regex and expect_json on the kept body; false after finishing with the reason. */
static bool body_conditions(ha_probe *p, http_state *s, const http_cfg *h, int status,
                            bool truncated)
{
    if (s->body_oom) {
        p->inconclusive = true; /* our memory, not the target's fault */
        http_finish(p, false, status, "out of memory keeping the body (%zu bytes) for %s",
                    s->body_len, h->json.n ? "expect_json" : "expect_body_regex");
        return false;
    }
    const char *body = s->body ? s->body : "";
    if (s->body)
        s->body[s->body_len] = '\0'; /* regexec reads up to the first NUL */
    if (h->body_regex_text[0] && regexec(&h->body_regex, body, 0, NULL, 0) != 0) {
        char shown[64];
        ha_quote(shown, sizeof(shown), h->body_regex_text, strlen(h->body_regex_text));
        if (truncated)
            http_finish(p, false, status,
                        "body did not match regex \"%s\" in the first %u bytes (HTTP %d)", shown,
                        h->max_response_bytes, status);
        else
            http_finish(p, false, status, "body did not match regex \"%s\" (HTTP %d)", shown,
                        status);
        return false;
    }
    char reason[HA_REASON_MAX];
    if (h->json.n && !ha_json_conds_eval(&h->json, body, s->body_len, truncated,
                                         h->max_response_bytes, reason, sizeof(reason))) {
        http_finish(p, false, status, "%s", reason);
        return false;
    }
    return true;
}

/* Status and body rules, once enough of the answer is in. */
static void verdict(ha_probe *p, bool truncated)
{
    http_state *s = p->type_state;
    const http_cfg *h = p->cfg->type_cfg;
    int status = s->parser.status_code;
    if (!status_expected(h, status)) {
        http_finish(p, false, status, "HTTP %d", status);
        return;
    }
    if (h->expect_body[0] && !s->body_matched) {
        char shown[48]; /* cut on a character boundary, newlines and such escaped */
        ha_quote(shown, sizeof(shown), h->expect_body, strlen(h->expect_body));
        if (truncated)
            http_finish(p, false, status,
                        "body did not match \"%s\" in the first %u bytes (HTTP %d)", shown,
                        h->max_response_bytes, status);
        else
            http_finish(p, false, status, "body did not match \"%s\" (HTTP %d)", shown, status);
        return;
    }
    if (needs_body(h) && !body_conditions(p, s, h, status, truncated))
        return;
    /* Passing: slower than warn_latency is degraded (warn), still a pass. */
    uint64_t ms = (uv_hrtime() - p->start_ns) / 1000000;
    if (h->warn_latency_ms && ms > h->warn_latency_ms)
        ha_probe_warn(p, "slow: %llums, over warn_latency %llums", (unsigned long long)ms,
                      (unsigned long long)h->warn_latency_ms);
    http_finish(p, true, status, "HTTP %d", status);
}

static void http_on_connected(ha_probe *p)
{
    http_state *s = p->type_state;
    ha_probe_send(p, s->request, s->request_len);
}

static void http_on_data(ha_probe *p, const char *data, size_t len)
{
    http_state *s = p->type_state;
    const http_cfg *h = p->cfg->type_cfg;
    uint64_t cap = h->max_response_bytes;
    bool over = p->bytes_read > cap;
    if (over) /* parse only up to the cap */
        len -= (size_t)(p->bytes_read - cap);
    llhttp_errno_t err = llhttp_execute(&s->parser, data, len);
    if (err == HPE_PAUSED || s->message_done) {
        verdict(p, false);
    } else if (err != HPE_OK) {
        http_finish(p, false, 0, "invalid HTTP response: %s (%s)",
                    llhttp_get_error_reason(&s->parser), p->target);
    } else if (over || p->bytes_read == cap) {
        if (s->headers_done)
            verdict(p, true);
        else
            http_finish(p, false, 0, "response headers larger than %u bytes (%s)",
                        h->max_response_bytes, p->target);
    }
}

static void http_on_eof(ha_probe *p)
{
    http_state *s = p->type_state;
    if (p->bytes_read == 0) {
        http_finish(p, false, 0, "connection closed before response (%s)", p->target);
        return;
    }
    /* A close-delimited body (HTTP/1.0, no Content-Length) ends here legitimately. */
    llhttp_errno_t err = llhttp_finish(&s->parser);
    /* HPE_PAUSED is our own on_message_complete saying "done", not an error. */
    if ((err == HPE_OK || err == HPE_PAUSED) && s->message_done) {
        verdict(p, false);
    } else if (!s->headers_done && s->after_interim) {
        http_finish(p, false, 0,
                    "connection closed after an interim HTTP %d, before the final response "
                    "(%s)",
                    s->interim_status, p->target);
    } else if (!s->headers_done && s->interim_status) {
        http_finish(p, false, 0,
                    "connection closed mid-headers after %llu bytes, after an interim HTTP "
                    "%d (%s)",
                    (unsigned long long)p->bytes_read, s->interim_status, p->target);
    } else if (!s->headers_done) {
        http_finish(p, false, 0, "connection closed mid-headers after %llu bytes (%s)",
                    (unsigned long long)p->bytes_read, p->target);
    } else {
        http_finish(p, false, s->parser.status_code,
                    "connection closed before end of body (HTTP %d, %llu bytes read)",
                    s->parser.status_code, (unsigned long long)p->bytes_read);
    }
}

/* --- lifecycle ---------------------------------------------------------------------------- */

/* Appends s at *off in buf; with buf NULL only counts (the sizing pass). */
static void put(char *buf, size_t *off, const char *s)
{
    size_t len = strlen(s);
    if (buf)
        memcpy(buf + *off, s, len);
    *off += len;
}

static void put_header(char *buf, size_t *off, const char *name, const char *value)
{
    put(buf, off, name);
    put(buf, off, ": ");
    put(buf, off, value);
    put(buf, off, "\r\n");
}

/* The request: the line, Host/User-Agent/Accept unless `headers` sets them, the configured
 * headers in order, Connection: close. Two passes over the same code: size, then write. */
static size_t build_request(const ha_check_config *c, const char *host, char *buf)
{
    const http_cfg *h = c->type_cfg;
    static const char *const defaults[][2] = {
        {"Host", NULL}, {"User-Agent", "healthagg/" HEALTHAGG_VERSION}, {"Accept", "*/*"}};
    size_t off = 0;
    put(buf, &off, h->method_head ? "HEAD " : "GET ");
    put(buf, &off, c->url.path);
    put(buf, &off, " HTTP/1.1\r\n");
    for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++)
        if (!ha_secret_map_get(&h->headers, defaults[i][0]))
            put_header(buf, &off, defaults[i][0], defaults[i][1] ? defaults[i][1] : host);
    for (size_t i = 0; i < h->headers.n; i++)
        put_header(buf, &off, h->headers.items[i].name, h->headers.items[i].value);
    put_header(buf, &off, "Connection", "close");
    put(buf, &off, "\r\n");
    if (buf)
        buf[off] = '\0';
    return off;
}

static int http_init(ha_probe *p)
{
    http_state *s = p->type_state;
    const ha_check_config *c = p->cfg;
    const http_cfg *h = c->type_cfg;
    char host[HA_HOST_MAX + 16];
    if (c->url.port == c->row->default_port)
        snprintf(host, sizeof(host), c->url.host_is_ipv6 ? "[%s]" : "%s", c->url.host);
    else
        ha_format_hostport(c->url.host, c->url.host_is_ipv6, c->url.port, host, sizeof(host));
    size_t n = build_request(c, host, NULL);
    s->request = malloc(n + 1);
    if (!s->request)
        return UV_ENOMEM;
    s->request_len = build_request(c, host, s->request);

    size_t m = strlen(h->expect_body);
    if (m > 0) {
        s->kmp = calloc(m, sizeof(*s->kmp));
        if (!s->kmp)
            return UV_ENOMEM; /* ha_probe_init's failure path calls http_free */
        for (size_t i = 1, k = 0; i < m; i++) {
            while (k > 0 && h->expect_body[i] != h->expect_body[k])
                k = s->kmp[k - 1];
            if (h->expect_body[i] == h->expect_body[k])
                k++;
            s->kmp[i] = (uint16_t)k;
        }
    }
    return 0;
}

static void http_reset(ha_probe *p)
{
    http_state *s = p->type_state;
    llhttp_init(&s->parser, HTTP_RESPONSE, &http_settings);
    s->parser.data = p;
    s->headers_done = false;
    s->message_done = false;
    s->interim_status = 0;
    s->after_interim = false;
    s->body_match_pos = 0;
    s->body_matched = false;
    s->body_len = 0;
    s->body_oom = false;
}

static void http_free(ha_probe *p)
{
    http_state *s = p->type_state;
    free(s->request);
    s->request = NULL;
    free(s->kmp);
    s->kmp = NULL;
    free(s->body);
    s->body = NULL;
    s->body_cap = 0;
}

const ha_check_type ha_check_http = {
    .name = "http",
    .keys = http_keys,
    .cfg_size = sizeof(http_cfg),
    .state_size = sizeof(http_state),
    .parse = http_parse,
    .free_cfg = http_free_cfg,
    .describe = http_describe,
    .init = http_init,
    .reset = http_reset,
    .on_connected = http_on_connected,
    .on_data = http_on_data,
    .on_eof = http_on_eof,
    .free = http_free,
};
