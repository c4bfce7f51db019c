/* render.c - response bodies for /readyz and /health (application/health+json, after the IETF
 * draft-inadarei-api-health-check); /metrics is metrics.c.
 *
 * Rendering allocates; that is the point of doing it here, once per batch of results, and
 * not per request. */
#include "healthagg/render.h"
#include "healthagg/check_type.h"

#include "healthagg/quote.h"
#include "healthagg/timeutil.h"

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *reason_phrase(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 413:
        return "Content Too Large";
    case 431:
        return "Request Header Fields Too Large";
    case 503:
        return "Service Unavailable";
    }
    return "Unknown";
}

ha_response *ha_response_new(int status, const char *content_type, const char *extra_headers,
                             const char *body, size_t body_len)
{
    ha_response *r = ha_response_alloc(status, content_type, extra_headers, body_len);
    if (r && body_len)
        memcpy(r->data + r->head_len, body, body_len);
    return r;
}

ha_response *ha_response_alloc(int status, const char *content_type, const char *extra_headers,
                               size_t body_len)
{
#define HEAD_FMT                                                                                   \
    "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nCache-Control: "                 \
    "no-store\r\n%s%s\r\n"
    const char *extra = extra_headers ? extra_headers : "";
    /* The second head is sent with the response that ends a connection (keep-alive cap,
     * client asked to close): the client must learn not to send on it again. */
    bool closes = strstr(extra, "Connection: close\r\n") != NULL;
    const char *close = closes ? "" : "Connection: close\r\n";
    const char *keep = closes ? "" : "Connection: keep-alive\r\n";
    const char *phrase = reason_phrase(status);
    int head = snprintf(NULL, 0, HEAD_FMT, status, phrase, content_type, body_len, extra, "");
    int close_head =
        snprintf(NULL, 0, HEAD_FMT, status, phrase, content_type, body_len, extra, close);
    int ka_head = snprintf(NULL, 0, HEAD_FMT, status, phrase, content_type, body_len, extra, keep);
    if (head < 0 || close_head < 0 || ka_head < 0)
        return NULL;
    ha_response *r =
        malloc(sizeof(*r) + (size_t)head + body_len + (size_t)close_head + (size_t)ka_head + 1);
    if (!r)
        return NULL;
    r->refs = 1;
    r->status = status;
    r->head_len = (size_t)head;
    r->len = (size_t)head + body_len;
    r->close_head_len = (size_t)close_head;
    r->ka_head_len = (size_t)ka_head;
    /* The head's terminating NUL lands on the body's first byte, which the caller writes. */
    snprintf(r->data, (size_t)head + 1, HEAD_FMT, status, phrase, content_type, body_len, extra,
             "");
    snprintf(r->data + r->len, (size_t)close_head + 1, HEAD_FMT, status, phrase, content_type,
             body_len, extra, close);
    snprintf(r->data + r->len + close_head, (size_t)ka_head + 1, HEAD_FMT, status, phrase,
             content_type, body_len, extra, keep);
    return r;
#undef HEAD_FMT
}

void ha_response_ref(ha_response *r)
{
    r->refs++;
}

void ha_response_unref(ha_response *r)
{
    if (r && --r->refs == 0)
        free(r);
}

ha_response *ha_render_readyz(const ha_view *v)
{
    char line[HA_SUMMARY_MAX + 48], body[sizeof(line) + 2];
    ha_agg_probe_line(v->agg, v->enforce, v->summary, line, sizeof(line));
    int n = snprintf(body, sizeof(body), "%s\n", line);
    if (n < 0)
        return NULL;
    if ((size_t)n >= sizeof(body))
        n = (int)sizeof(body) - 1;
    return ha_response_new(ha_agg_probe_ok(v->agg, v->enforce) ? 200 : 503,
                           "text/plain; charset=utf-8", NULL, body, (size_t)n);
}

/* Per-check status in health+json terms: a failing non-critical check is a warning. */
static const char *check_health_status(const ha_check_config *c, const ha_check_state *s)
{
    if (s->status == HA_CHECK_PASS)
        return s->has_result && s->last.ok && s->last.degraded ? "warn" : "pass";
    if (s->status == HA_CHECK_FAIL && c->critical)
        return "fail";
    return "warn";
}

static const char *agg_health_status(ha_agg_status a)
{
    switch (a) {
    case HA_AGG_PASS:
        return "pass";
    case HA_AGG_WARN:
        return "warn";
    default:
        return "fail";
    }
}

static cJSON *health_check_entry(const ha_check_config *c, const ha_check_state *s)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    char when[HA_RFC3339_MAX], reason[HA_REASON_MAX + 64];
    ha_state_reason(s, c, reason, sizeof(reason));
    bool ok = cJSON_AddStringToObject(o, "componentType", c->row->type->name) &&
              cJSON_AddStringToObject(o, "componentId", c->url_text) &&
              cJSON_AddStringToObject(o, "status", check_health_status(c, s)) &&
              cJSON_AddStringToObject(o, "state", ha_check_status_name(s->status)) &&
              cJSON_AddBoolToObject(o, "critical", c->critical);
    if (ok && s->has_result) {
        ha_format_rfc3339(s->last_wall_ms, when, sizeof(when));
        ok = cJSON_AddNumberToObject(o, "observedValue", (double)s->last.latency_us / 1000.0) &&
             cJSON_AddStringToObject(o, "observedUnit", "ms") &&
             cJSON_AddStringToObject(o, "time", when) &&
             cJSON_AddStringToObject(o, "output", reason);
    } else if (ok) {
        ok = cJSON_AddStringToObject(o, "output", "no result yet") != NULL;
    }
    if (ok && s->cert_not_after) {
        ha_format_rfc3339((uint64_t)s->cert_not_after * 1000, when, sizeof(when));
        char *ms = strrchr(when, '.'); /* whole seconds: "2026-01-01T00:00:00Z" */
        if (ms)
            memcpy(ms, "Z", 2);
        ok = cJSON_AddStringToObject(o, "certNotAfter", when) != NULL;
    }
    ok = ok && cJSON_AddNumberToObject(o, "consecutiveFailures", s->consecutive_failures) &&
         cJSON_AddNumberToObject(o, "consecutiveSuccesses", s->consecutive_successes);
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

ha_response *ha_render_health(const ha_view *v)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *checks = NULL;
    char *text = NULL;
    ha_response *r = NULL;
    if (!root)
        return NULL;
    if (!cJSON_AddStringToObject(root, "status", agg_health_status(v->agg)) ||
        !cJSON_AddStringToObject(root, "serviceId", "healthagg") ||
        !cJSON_AddStringToObject(root, "version", HEALTHAGG_VERSION) ||
        !cJSON_AddStringToObject(root, "description",
                                 "healthagg sidecar: aggregate of the task's checks") ||
        !cJSON_AddStringToObject(root, "output", v->summary) ||
        !cJSON_AddStringToObject(root, "state", ha_agg_status_name(v->agg)) ||
        !cJSON_AddBoolToObject(root, "enforced", v->enforce) ||
        (v->group && !cJSON_AddStringToObject(root, "group", v->group)) ||
        !(checks = cJSON_AddObjectToObject(root, "checks")))
        goto out;
    for (size_t j = 0; j < v->n; j++) {
        size_t i = v->idx ? v->idx[j] : j;
        cJSON *arr = cJSON_AddArrayToObject(checks, v->cfg[i].name);
        cJSON *entry = arr ? health_check_entry(&v->cfg[i], &v->st[i]) : NULL;
        if (!entry)
            goto out;
        cJSON_AddItemToArray(arr, entry);
        if (v->with_history && v->history) {
            cJSON *h = ha_history_json(v->history, i);
            if (!h)
                goto out;
            cJSON_AddItemToObject(entry, "history", h);
        }
    }
    text = ha_json_fix_utf8(cJSON_PrintUnformatted(root)); /* always valid UTF-8 JSON */
    if (!text)
        goto out;
    size_t len = strlen(text);
    text[len] = '\0';
    char *nl = realloc(text, len + 2);
    if (!nl)
        goto out;
    text = nl;
    text[len++] = '\n';
    r = ha_response_new(ha_agg_ready(v->agg) ? 200 : 503, "application/health+json", NULL, text,
                        len);
out:
    free(text);
    cJSON_Delete(root);
    return r;
}
