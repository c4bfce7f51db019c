/* check_http.c - http:// checks: send one prebuilt request, parse the answer with llhttp.
 *
 * The request bytes are built once per check, the parser and read buffer live in the probe,
 * so a check cycle allocates nothing. The verdict is taken at the end of the message, at
 * EOF, or once `max_response_bytes` have been read (status decides then: a health endpoint
 * that streams forever is judged by its status line, as Kubernetes does, not read to the
 * end). The body, when `expect_body` is set, is searched incrementally (KMP), so a match
 * that straddles two reads is still found without buffering the body. */
#include "healthagg/check.h"
#include "healthagg/quote.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int on_headers_complete(llhttp_t *parser)
{
    ha_probe *p = parser->data;
    if (parser->status_code >= 100 && parser->status_code < 200)
        return 0; /* interim response: the real one follows */
    p->headers_done = true;
    return p->cfg->method_head ? 1 : 0; /* 1: a HEAD answer has no body */
}

static int on_body(llhttp_t *parser, const char *at, size_t len)
{
    ha_probe *p = parser->data;
    const char *needle = p->cfg->expect_body;
    if (!needle[0] || p->body_matched)
        return 0;
    size_t m = strlen(needle), q = p->body_match_pos;
    for (size_t i = 0; i < len; i++) {
        while (q > 0 && needle[q] != at[i])
            q = p->kmp[q - 1];
        if (needle[q] == at[i])
            q++;
        if (q == m) {
            p->body_matched = true;
            break;
        }
    }
    p->body_match_pos = q;
    return 0;
}

static int on_message_complete(llhttp_t *parser)
{
    ha_probe *p = parser->data;
    if (parser->status_code >= 100 && parser->status_code < 200)
        return 0;
    p->message_done = true;
    return HPE_PAUSED; /* stop: anything after the answer is not ours to read */
}

static const llhttp_settings_t http_settings = {
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* Status and body rules, once enough of the answer is in. */
static void verdict(ha_probe *p, bool truncated)
{
    int status = p->parser.status_code;
    if (!ha_status_expected(p->cfg, status)) {
        ha_probe_finish(p, false, status, "HTTP %d", status);
        return;
    }
    if (p->cfg->expect_body[0] && !p->body_matched) {
        char shown[48]; /* cut on a character boundary, newlines and such escaped */
        ha_quote(shown, sizeof(shown), p->cfg->expect_body, strlen(p->cfg->expect_body));
        if (truncated)
            ha_probe_finish(p, false, status,
                            "body did not match \"%s\" in the first %u bytes (HTTP %d)", shown,
                            p->cfg->max_response_bytes, status);
        else
            ha_probe_finish(p, false, status, "body did not match \"%s\" (HTTP %d)", shown, status);
        return;
    }
    ha_probe_finish(p, true, status, "HTTP %d", status);
}

static void http_on_connected(ha_probe *p)
{
    ha_probe_write(p, p->request, p->request_len);
}

static void http_on_data(ha_probe *p, const char *data, size_t len)
{
    uint64_t cap = p->cfg->max_response_bytes;
    bool over = p->bytes_read > cap;
    if (over) /* parse only up to the cap */
        len -= (size_t)(p->bytes_read - cap);
    llhttp_errno_t err = llhttp_execute(&p->parser, data, len);
    if (err == HPE_PAUSED || p->message_done) {
        verdict(p, false);
    } else if (err != HPE_OK) {
        ha_probe_finish(p, false, 0, "invalid HTTP response: %s (%s)",
                        llhttp_get_error_reason(&p->parser), p->target);
    } else if (over || p->bytes_read == cap) {
        if (p->headers_done)
            verdict(p, true);
        else
            ha_probe_finish(p, false, 0, "response headers larger than %u bytes (%s)",
                            p->cfg->max_response_bytes, p->target);
    }
}

static void http_on_eof(ha_probe *p)
{
    if (p->bytes_read == 0) {
        ha_probe_finish(p, false, 0, "connection closed before response (%s)", p->target);
        return;
    }
    /* A close-delimited body (HTTP/1.0, no Content-Length) ends here legitimately. */
    llhttp_errno_t err = llhttp_finish(&p->parser);
    /* HPE_PAUSED is our own on_message_complete saying "done", not an error. */
    if ((err == HPE_OK || err == HPE_PAUSED) && p->message_done) {
        verdict(p, false);
    } else if (!p->headers_done) {
        ha_probe_finish(p, false, 0, "connection closed mid-headers after %llu bytes (%s)",
                        (unsigned long long)p->bytes_read, p->target);
    } else {
        ha_probe_finish(p, false, p->parser.status_code,
                        "connection closed before end of body (HTTP %d, %llu bytes read)",
                        p->parser.status_code, (unsigned long long)p->bytes_read);
    }
}

const ha_check_ops ha_check_http_ops = {
    .on_connected = http_on_connected,
    .on_data = http_on_data,
    .on_eof = http_on_eof,
};

int ha_check_http_init(ha_probe *p)
{
    const ha_check_config *c = p->cfg;
    char host[HA_HOST_MAX + 16];
    if (c->url.port == 80)
        snprintf(host, sizeof(host), c->url.host_is_ipv6 ? "[%s]" : "%s", c->url.host);
    else
        ha_format_hostport(c->url.host, c->url.host_is_ipv6, c->url.port, host, sizeof(host));
#define REQUEST_FMT                                                                                \
    "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: healthagg/" HEALTHAGG_VERSION                       \
    "\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    const char *method = c->method_head ? "HEAD" : "GET";
    int n = snprintf(NULL, 0, REQUEST_FMT, method, c->url.path, host);
    if (n < 0)
        return UV_EINVAL;
    p->request = malloc((size_t)n + 1);
    if (!p->request)
        return UV_ENOMEM;
    snprintf(p->request, (size_t)n + 1, REQUEST_FMT, method, c->url.path, host);
#undef REQUEST_FMT
    p->request_len = (size_t)n;

    size_t m = strlen(c->expect_body);
    if (m > 0) {
        p->kmp = calloc(m, sizeof(*p->kmp));
        if (!p->kmp) {
            ha_probe_free(p);
            return UV_ENOMEM;
        }
        for (size_t i = 1, k = 0; i < m; i++) {
            while (k > 0 && c->expect_body[i] != c->expect_body[k])
                k = p->kmp[k - 1];
            if (c->expect_body[i] == c->expect_body[k])
                k++;
            p->kmp[i] = (uint16_t)k;
        }
    }
    return 0;
}

void ha_check_http_reset(ha_probe *p)
{
    llhttp_init(&p->parser, HTTP_RESPONSE, &http_settings);
    p->parser.data = p;
    p->headers_done = false;
    p->body_match_pos = 0;
    p->body_matched = false;
}
