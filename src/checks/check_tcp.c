/* check_tcp.c - tcp:// checks: the target accepts a connection and, optionally, answers a
 * request the way the protocol should (send/expect).
 *
 * Without keys the connection is the whole test: it proves the port is open, not that the
 * service behind it is well. `send`/`send_hex` writes bytes once connected; `expect`/
 * `expect_hex` (one value or a list of alternatives) must be how the answer starts: Redis
 * `PING` -> `+PONG`, PostgreSQL's 8-byte SSLRequest -> `S` or `N`, an SMTP banner `220`.
 * The verdict is taken as soon as the bytes read decide it - every alternative ruled out, or
 * one matched - so a chatty server is never read to the end; `max_response_bytes` bounds what
 * may be read and an `expect` must fit in it. A mismatch quotes the answer (printable, cut,
 * first line only) next to what was expected, so the reason says what the server said
 * (`expected "+PONG", got "-NOAUTH Authentication required."`).
 *
 * The answer buffer is allocated once per probe; a check cycle allocates nothing. The
 * connection is closed plainly, not reset: the targets are databases and caches, which log
 * a reset as an error. */
#include "healthagg/check.h"
#include "healthagg/expand.h"
#include "healthagg/quote.h"
#include "healthagg/secrets.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TCP_SEND_MAX 8192
#define TCP_EXPECT_MAX 1024 /* bytes of one alternative */
#define TCP_EXPECT_ALTS 8
#define TCP_SHOW 96 /* bytes of the answer kept to be quoted in a reason */
#define TCP_DEFAULT_MAX_RESPONSE 1024

typedef struct tcp_bytes {
    unsigned char *data; /* owned */
    size_t len;
} tcp_bytes;

typedef struct tcp_cfg {
    tcp_bytes send; /* len 0: send nothing */
    bool send_is_hex;
    bool send_secret;      /* `send` used ${VAR}: never shown, and its values are scrubbed */
    ha_secret_map secrets; /* only its scrub list: the variables' values (secrets.h) */
    tcp_bytes expect[TCP_EXPECT_ALTS];
    size_t n_expect; /* 0: connecting is enough */
    bool expect_is_hex;
    uint32_t max_response_bytes;
} tcp_cfg;

typedef struct tcp_state {
    unsigned char *buf; /* owned: the start of the answer */
    size_t cap, len;
    unsigned alive; /* bit i: expect[i] still agrees with every byte read */
} tcp_state;

static const char *const tcp_keys[] = {"send",       "send_hex",           "expect",
                                       "expect_hex", "max_response_bytes", NULL};

static int tcp_check_url(const ha_check_config *c, char *err, size_t errlen)
{
    if (c->url.has_path) {
        snprintf(err, errlen, "tcp:// URLs have no path; use tcp://HOST:PORT");
        return -1;
    }
    return 0;
}

/* --- config ------------------------------------------------------------------------------- */

static int copy_bytes(tcp_bytes *out, const void *data, size_t len)
{
    out->data = malloc(len + 1); /* NUL-terminated too, for text values */
    if (!out->data)
        return -1;
    memcpy(out->data, data, len);
    out->data[len] = '\0';
    out->len = len;
    return 0;
}

/* One text or hex value of `send`/`expect` into out. */
static int parse_value(const ha_key_source *src, const cJSON *v, const char *path, bool hex,
                       size_t max, tcp_bytes *out)
{
    if (!cJSON_IsString(v))
        return ha_key_error(src, "%s: expected a string, got %s", path, ha_json_type_name(v));
    if (!hex) {
        size_t n = strlen(v->valuestring);
        if (n == 0)
            return ha_key_error(src, "%s: empty; leave the key out instead", path);
        if (n > max)
            return ha_key_error(src, "%s: longer than %zu bytes", path, max);
        if (copy_bytes(out, v->valuestring, n) != 0)
            return ha_key_error(src, "%s: out of memory", path);
        return 0;
    }
    if (strstr(v->valuestring, "${"))
        return ha_key_error(src, "%s: ${VAR} is for text keys (send); hex has no variables", path);
    unsigned char *buf = malloc(max);
    char msg[HA_ERR_MAX];
    size_t n = 0;
    if (!buf)
        return ha_key_error(src, "%s: out of memory", path);
    if (ha_parse_hex(v->valuestring, buf, max, &n, msg, sizeof(msg)) != 0) {
        free(buf);
        return ha_key_error(src, "%s: %s", path, msg);
    }
    int rc = copy_bytes(out, buf, n);
    free(buf);
    return rc == 0 ? 0 : ha_key_error(src, "%s: out of memory", path);
}

/* Adds the value of every ${NAME} in `text` to the scrub list (values too short to be worth
 * hiding, as secrets.h decides, are left out: they would redact ordinary words). */
static int collect_secrets(tcp_cfg *t, const char *text)
{
    for (const char *p = strstr(text, "${"); p; p = strstr(p + 2, "${")) {
        const char *end = strchr(p + 2, '}');
        if (!end)
            break;
        char name[128];
        size_t n = (size_t)(end - p - 2);
        if (n == 0 || n >= sizeof(name))
            continue;
        memcpy(name, p + 2, n);
        name[n] = '\0';
        const char *val = getenv(name);
        if (!val || strlen(val) < HA_SECRET_SCRUB_MIN)
            continue;
        char **grown = realloc(t->secrets.scrub, (t->secrets.n_scrub + 1) * sizeof(char *));
        if (!grown)
            return -1;
        t->secrets.scrub = grown;
        if (!(grown[t->secrets.n_scrub] = strdup(val)))
            return -1;
        t->secrets.n_scrub++;
    }
    return 0;
}

/* `send` with ${VAR}: expanded from the environment once, at load (ECS `secrets` arrive as
 * environment variables: `AUTH ${REDIS_PASSWORD}`). The bytes are then a secret. */
static int expand_send(const ha_key_source *src, tcp_cfg *t, const char *text, const char *path)
{
    char err[HA_ERR_MAX];
    char *x = ha_expand_env(text, path, err, sizeof(err));
    if (!x)
        return ha_key_error(src, "%s", err);
    size_t n = strlen(x);
    int rc = 0;
    if (n == 0)
        rc = ha_key_error(src, "%s: empty once its variables are expanded", path);
    else if (n > TCP_SEND_MAX)
        rc = ha_key_error(src, "%s: longer than %d bytes once its variables are expanded", path,
                          TCP_SEND_MAX);
    else if (copy_bytes(&t->send, x, n) != 0 || collect_secrets(t, text) != 0)
        rc = ha_key_error(src, "%s: out of memory", path);
    t->send_secret = true;
    free(x);
    return rc;
}

/* Exactly one of `text_key`/`hex_key` (or neither); *found tells which, with its path. */
static const cJSON *pick_one(const ha_key_source *src, const char *text_key, const char *hex_key,
                             bool *is_hex, char *path, size_t pathlen, int *rc)
{
    char tpath[160] = "", hpath[160] = "";
    const cJSON *t = ha_key_find(src, text_key, tpath, sizeof(tpath));
    const cJSON *h = ha_key_find(src, hex_key, hpath, sizeof(hpath));
    *rc = 0;
    if (t && h) {
        *rc = ha_key_error(src, "%s: give either %s or %s, not both (%s is set too)", hpath,
                           text_key, hex_key, tpath);
        return NULL;
    }
    *is_hex = h != NULL;
    snprintf(path, pathlen, "%s", h ? hpath : tpath);
    return h ? h : t;
}

static int tcp_parse(ha_check_config *c, const ha_key_source *src)
{
    tcp_cfg *t = c->type_cfg;
    char path[160];
    int rc;
    unsigned max = TCP_DEFAULT_MAX_RESPONSE;
    if (ha_key_uint(src, "max_response_bytes", 1, 16 * 1024 * 1024, &max) < 0)
        return -1;
    t->max_response_bytes = max;

    const cJSON *v = pick_one(src, "send", "send_hex", &t->send_is_hex, path, sizeof(path), &rc);
    if (rc != 0)
        return -1;
    if (v && !t->send_is_hex && cJSON_IsString(v) && strstr(v->valuestring, "${")) {
        if (expand_send(src, t, v->valuestring, path) != 0)
            return -1;
    } else if (v && parse_value(src, v, path, t->send_is_hex, TCP_SEND_MAX, &t->send) != 0) {
        return -1;
    }

    v = pick_one(src, "expect", "expect_hex", &t->expect_is_hex, path, sizeof(path), &rc);
    if (rc != 0)
        return -1;
    if (!v)
        return 0;
    const char *what = t->expect_is_hex ? "hex strings" : "strings";
    size_t count = cJSON_IsArray(v) ? (size_t)cJSON_GetArraySize(v) : 1;
    if (count == 0 || count > TCP_EXPECT_ALTS)
        return ha_key_error(src, "%s: give one value or a list of 1 to %d %s (alternatives)", path,
                            TCP_EXPECT_ALTS, what);
    const cJSON *it = cJSON_IsArray(v) ? v->child : v;
    for (size_t i = 0; i < count; i++, it = it->next) {
        char ipath[176];
        if (cJSON_IsArray(v))
            snprintf(ipath, sizeof(ipath), "%s[%zu]", path, i);
        else
            snprintf(ipath, sizeof(ipath), "%s", path);
        if (parse_value(src, it, ipath, t->expect_is_hex, TCP_EXPECT_MAX, &t->expect[i]) != 0)
            return -1;
        t->n_expect = i + 1;
        if (t->expect[i].len > t->max_response_bytes)
            return ha_key_error(src,
                                "%s: %zu bytes, more than max_response_bytes (%u); raise "
                                "max_response_bytes or shorten it",
                                ipath, t->expect[i].len, t->max_response_bytes);
    }
    return 0;
}

static void tcp_free_cfg(void *cfg)
{
    tcp_cfg *t = cfg;
    free(t->send.data);
    for (size_t i = 0; i < t->n_expect; i++)
        free(t->expect[i].data);
    ha_secret_map_free(&t->secrets);
}

/* Hex of up to `max` bytes, "de ad be ef", with "..." when there are more. */
static void hex_text(const unsigned char *b, size_t n, size_t max, char *out, size_t outlen)
{
    size_t off = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n && i < max && off + 4 < outlen; i++)
        off += (size_t)snprintf(out + off, outlen - off, "%s%02x", i ? " " : "", b[i]);
    if (n > max && off + 4 < outlen)
        snprintf(out + off, outlen - off, "...");
}

/* A value as shown in logs and reasons: "\"+PONG\"" (quoted, printable) or "hex 4e". */
static void show_value(const tcp_bytes *b, bool hex, char *out, size_t outlen)
{
    char q[TCP_SHOW + 8];
    if (hex) {
        hex_text(b->data, b->len, 24, q, sizeof(q));
        snprintf(out, outlen, "hex %s", q);
    } else {
        ha_quote(q, sizeof(q), (const char *)b->data, b->len);
        snprintf(out, outlen, "\"%s\"", q);
    }
}

/* Startup-log form: the text as configured (JSON escapes it), or the hex digits. */
static cJSON *describe_value(const tcp_bytes *b, bool hex)
{
    if (!hex) /* text values came from a JSON string: valid UTF-8 without NUL */
        return cJSON_CreateString((const char *)b->data);
    char h[TCP_SHOW * 3 + 8];
    hex_text(b->data, b->len, TCP_SHOW, h, sizeof(h));
    return cJSON_CreateString(h);
}

static void tcp_describe(const ha_check_config *c, cJSON *out)
{
    const tcp_cfg *t = c->type_cfg;
    if (t->send.len && t->send_secret)
        cJSON_AddStringToObject(out, "send", HA_REDACTED);
    else if (t->send.len)
        cJSON_AddItemToObject(out, t->send_is_hex ? "send_hex" : "send",
                              describe_value(&t->send, t->send_is_hex));
    if (t->n_expect) {
        cJSON *arr = cJSON_AddArrayToObject(out, t->expect_is_hex ? "expect_hex" : "expect");
        for (size_t i = 0; arr && i < t->n_expect; i++)
            cJSON_AddItemToArray(arr, describe_value(&t->expect[i], t->expect_is_hex));
        cJSON_AddNumberToObject(out, "max_response_bytes", t->max_response_bytes);
    }
}

/* --- probing ------------------------------------------------------------------------------ */

/* "\"+PONG\"" or "\"S\" or \"N\"" */
static void expected_text(const tcp_cfg *t, char *out, size_t outlen)
{
    size_t off = 0;
    out[0] = '\0';
    for (size_t i = 0; i < t->n_expect && off < outlen; i++) {
        char one[TCP_SHOW + 16];
        show_value(&t->expect[i], t->expect_is_hex, one, sizeof(one));
        off += (size_t)snprintf(out + off, outlen - off, "%s%s", i ? " or " : "", one);
    }
    ha_utf8_trim_partial(out); /* a long list may have been cut inside a character */
}

/* What the target said, for a reason: its first line, printable, or hex for hex checks. */
static void got_text(const tcp_cfg *t, const tcp_state *s, char *out, size_t outlen)
{
    if (t->expect_is_hex) {
        char h[24 * 3 + 8];
        hex_text(s->buf, s->len, 24, h, sizeof(h));
        snprintf(out, outlen, "hex %s", h);
        return;
    }
    size_t n = s->len;
    const unsigned char *nl = memchr(s->buf, '\n', n);
    bool cut = false;
    if (nl && nl > s->buf) { /* the first line, without its line ending */
        size_t line = (size_t)(nl - s->buf);
        cut = line + 1 < n;
        n = line > 0 && s->buf[line - 1] == '\r' ? line - 1 : line;
    }
    char q[TCP_SHOW + 8];
    ha_quote(q, sizeof(q), (const char *)s->buf, n);
    snprintf(out, outlen, "\"%s%s\"", q, cut ? "..." : "");
}

static void tcp_reset(ha_probe *p)
{
    tcp_state *s = p->type_state;
    const tcp_cfg *t = p->cfg->type_cfg;
    s->len = 0;
    s->alive = t->n_expect ? (1u << t->n_expect) - 1 : 0;
}

static void tcp_on_connected(ha_probe *p)
{
    const tcp_cfg *t = p->cfg->type_cfg;
    if (t->send.len) {
        ha_probe_send(p, (const char *)t->send.data, t->send.len);
        if (!p->running)
            return; /* the write failed and said why */
    }
    if (t->n_expect)
        return; /* the answer decides */
    if (t->send.len)
        ha_probe_finish(p, true, 0, "connected, sent %zu bytes (%s)", t->send.len, p->target);
    else
        ha_probe_finish(p, true, 0, "connected (%s)", p->target);
}

static void fail_mismatch(ha_probe *p, const char *prefix)
{
    const tcp_cfg *t = p->cfg->type_cfg;
    const tcp_state *s = p->type_state;
    char want[256], got[TCP_SHOW * 3], reason[HA_REASON_MAX];
    expected_text(t, want, sizeof(want));
    got_text(t, s, got, sizeof(got));
    int n = snprintf(reason, sizeof(reason), "%sexpected %s, got %s", prefix, want, got);
    if (n >= (int)sizeof(reason)) /* a long list of alternatives: cut on a character */
        ha_utf8_trim_partial(reason);
    /* A server may echo what it was sent ("unknown command 'AUTH ...'"): hide the secret. */
    if (t->secrets.n_scrub)
        ha_secret_scrub(&t->secrets, reason, sizeof(reason));
    ha_probe_finish(p, false, 0, "%s", reason);
}

static void tcp_on_data(ha_probe *p, const char *data, size_t len)
{
    tcp_state *s = p->type_state;
    const tcp_cfg *t = p->cfg->type_cfg;
    if (!t->n_expect)
        return; /* not reached: the attempt ended on connect */
    size_t start = s->len;
    size_t take = len < s->cap - s->len ? len : s->cap - s->len;
    memcpy(s->buf + s->len, data, take);
    s->len += take;
    /* Rule out every alternative that disagrees with a byte read so far. */
    for (size_t i = 0; i < t->n_expect; i++) {
        if (!(s->alive & (1u << i)))
            continue;
        const tcp_bytes *e = &t->expect[i];
        size_t upto = s->len < e->len ? s->len : e->len;
        if (upto > start && memcmp(s->buf + start, e->data + start, upto - start) != 0)
            s->alive &= ~(1u << i);
    }
    for (size_t i = 0; i < t->n_expect; i++) {
        if ((s->alive & (1u << i)) && s->len >= t->expect[i].len) {
            char one[TCP_SHOW + 16];
            show_value(&t->expect[i], t->expect_is_hex, one, sizeof(one));
            ha_probe_finish(p, true, 0, "answer starts with %s (%s)", one, p->target);
            return;
        }
    }
    if (!s->alive) {
        fail_mismatch(p, "");
        return;
    }
    if (p->bytes_read >= t->max_response_bytes) /* cannot happen: every expect fits the cap */
        fail_mismatch(p, "max_response_bytes read: ");
}

static void tcp_on_eof(ha_probe *p)
{
    const tcp_cfg *t = p->cfg->type_cfg;
    const tcp_state *s = p->type_state;
    char want[256];
    if (!t->n_expect) {
        ha_probe_finish(p, false, 0, "connection closed (%s)", p->target);
        return;
    }
    if (s->len == 0) {
        expected_text(t, want, sizeof(want));
        ha_probe_finish(p, false, 0, "connection closed before any answer (expected %s) (%s)", want,
                        p->target);
        return;
    }
    char prefix[64];
    snprintf(prefix, sizeof(prefix), "connection closed after %zu bytes: ", s->len);
    fail_mismatch(p, prefix);
}

static int tcp_init(ha_probe *p)
{
    tcp_state *s = p->type_state;
    const tcp_cfg *t = p->cfg->type_cfg;
    if (!t->n_expect)
        return 0;
    size_t need = TCP_SHOW;
    for (size_t i = 0; i < t->n_expect; i++)
        if (t->expect[i].len > need)
            need = t->expect[i].len;
    s->cap = need;
    s->buf = malloc(need);
    return s->buf ? 0 : UV_ENOMEM;
}

static void tcp_free(ha_probe *p)
{
    tcp_state *s = p->type_state;
    free(s->buf);
    s->buf = NULL;
}

const ha_check_type ha_check_tcp = {
    .name = "tcp",
    .keys = tcp_keys,
    .cfg_size = sizeof(tcp_cfg),
    .state_size = sizeof(tcp_state),
    .check_url = tcp_check_url,
    .parse = tcp_parse,
    .free_cfg = tcp_free_cfg,
    .describe = tcp_describe,
    .init = tcp_init,
    .reset = tcp_reset,
    .on_connected = tcp_on_connected,
    .on_data = tcp_on_data,
    .on_eof = tcp_on_eof,
    .free = tcp_free,
};
