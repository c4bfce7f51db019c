/* render.c - response bodies for /readyz, /health (application/health+json, after the IETF
 * draft-inadarei-api-health-check) and /metrics (Prometheus text format 0.0.4).
 *
 * Rendering allocates; that is the point of doing it here, once per batch of results, and
 * not per request. */
#include "healthagg/render.h"
#include "healthagg/check_type.h"

#include "healthagg/quote.h"
#include "healthagg/timeutil.h"

#include <cJSON.h>
#include <stdarg.h>
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
    snprintf(r->data, (size_t)head + 1, HEAD_FMT, status, phrase, content_type, body_len, extra,
             "");
    if (body_len)
        memcpy(r->data + head, body, body_len);
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
        !(checks = cJSON_AddObjectToObject(root, "checks")))
        goto out;
    for (size_t i = 0; i < v->n; i++) {
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

/* A growable text buffer for the Prometheus page. */
typedef struct textbuf {
    char *data;
    size_t len, cap;
    bool failed;
} textbuf;

static void tb_printf(textbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void tb_printf(textbuf *b, const char *fmt, ...)
{
    if (b->failed)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->failed = true;
            return;
        }
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap * 2 + (size_t)n;
        char *d = realloc(b->data, cap);
        if (!d) {
            b->failed = true;
            return;
        }
        b->data = d;
        b->cap = cap;
    }
}

typedef enum {
    M_INCONCLUSIVE,
    M_UP,
    M_STATE,
    M_LATENCY,
    M_CONSEC_FAIL,
    M_LAST_SUCCESS,
    M_TRANSITIONS,
    M_PROBES,
    M_FAILURES,
    M_CERT_EXPIRY
} metric_kind;

static void metric_family(textbuf *b, const ha_view *v, metric_kind kind, const char *name,
                          const char *type, const char *help)
{
    tb_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
    for (size_t i = 0; i < v->n; i++) {
        const ha_check_state *s = &v->st[i];
        const char *c = v->cfg[i].name;
        switch (kind) {
        case M_UP:
            tb_printf(b, "%s{check=\"%s\"} %d\n", name, c, s->status == HA_CHECK_PASS);
            break;
        case M_STATE:
            for (int st = HA_CHECK_STARTING; st <= HA_CHECK_FAIL; st++)
                tb_printf(b, "%s{check=\"%s\",state=\"%s\"} %d\n", name, c,
                          ha_check_status_name((ha_check_status)st), (int)s->status == st);
            break;
        case M_LATENCY:
            tb_printf(b, "%s{check=\"%s\"} %.6f\n", name, c, (double)s->last.latency_us / 1e6);
            break;
        case M_CONSEC_FAIL:
            tb_printf(b, "%s{check=\"%s\"} %u\n", name, c, s->consecutive_failures);
            break;
        case M_LAST_SUCCESS:
            tb_printf(b, "%s{check=\"%s\"} %.3f\n", name, c, (double)s->last_success_wall_ms / 1e3);
            break;
        case M_TRANSITIONS:
            tb_printf(b, "%s{check=\"%s\"} %llu\n", name, c, (unsigned long long)s->transitions);
            break;
        case M_PROBES:
            tb_printf(b, "%s{check=\"%s\"} %llu\n", name, c, (unsigned long long)s->probes_total);
            break;
        case M_INCONCLUSIVE:
            tb_printf(b, "%s{check=\"%s\"} %llu\n", name, c,
                      (unsigned long long)s->inconclusive_total);
            break;
        case M_FAILURES:
            tb_printf(b, "%s{check=\"%s\"} %llu\n", name, c, (unsigned long long)s->failures_total);
            break;
        case M_CERT_EXPIRY: /* TLS checks whose certificate was seen */
            if (s->cert_not_after)
                tb_printf(b, "%s{check=\"%s\"} %lld\n", name, c, (long long)s->cert_not_after);
            break;
        }
    }
}

ha_response *ha_render_metrics(const ha_view *v)
{
    textbuf b = {NULL, 0, 0, false};
    b.cap = 1024 + v->n * 1024;
    b.data = malloc(b.cap);
    if (!b.data)
        return NULL;
    tb_printf(&b,
              "# HELP healthagg_up 1 when the aggregate is pass or warn (the real verdict, also in "
              "report-only mode).\n"
              "# TYPE healthagg_up gauge\nhealthagg_up %d\n",
              ha_agg_ready(v->agg));
    tb_printf(&b,
              "# HELP healthagg_enforced 0 in report-only mode (\"enforce\": false): /readyz "
              "stays 200 whatever the checks say.\n# TYPE healthagg_enforced gauge\n"
              "healthagg_enforced %d\n",
              v->enforce);
    tb_printf(&b, "# HELP healthagg_aggregate_state Aggregate state, one series per state.\n"
                  "# TYPE healthagg_aggregate_state gauge\n");
    for (int a = HA_AGG_STARTING; a <= HA_AGG_DRAINING; a++)
        tb_printf(&b, "healthagg_aggregate_state{state=\"%s\"} %d\n",
                  ha_agg_status_name((ha_agg_status)a), (int)v->agg == a);
    metric_family(&b, v, M_UP, "healthagg_check_up", "gauge", "1 when the check passes.");
    metric_family(&b, v, M_STATE, "healthagg_check_state", "gauge",
                  "Check state, one series per state.");
    metric_family(&b, v, M_LATENCY, "healthagg_check_latency_seconds", "gauge",
                  "Duration of the last probe.");
    metric_family(&b, v, M_CONSEC_FAIL, "healthagg_check_consecutive_failures", "gauge",
                  "Consecutive failed probes counted toward failure_threshold.");
    metric_family(&b, v, M_LAST_SUCCESS, "healthagg_check_last_success_timestamp_seconds", "gauge",
                  "Unix time of the last passing probe (0: never).");
    metric_family(&b, v, M_TRANSITIONS, "healthagg_check_transitions_total", "counter",
                  "State changes of the check.");
    metric_family(&b, v, M_PROBES, "healthagg_check_probes_total", "counter", "Probes run.");
    metric_family(&b, v, M_FAILURES, "healthagg_check_failures_total", "counter",
                  "Probes that failed.");
    metric_family(&b, v, M_INCONCLUSIVE, "healthagg_check_probe_errors_total", "counter",
                  "Probes that failed on our side (no file descriptors or memory); not counted.");
    metric_family(&b, v, M_CERT_EXPIRY, "healthagg_check_cert_expiry_timestamp_seconds", "gauge",
                  "Unix time the TLS peer certificate expires (notAfter, from the last full "
                  "handshake).");
    tb_printf(&b,
              "# HELP healthagg_scheduler_lag_max_seconds Largest delay of a probe behind its "
              "planned start.\n# TYPE healthagg_scheduler_lag_max_seconds gauge\n"
              "healthagg_scheduler_lag_max_seconds %.6f\n",
              (double)v->sched_lag->max_us / 1e6);
    tb_printf(&b, "# HELP healthagg_scheduler_lag_seconds How late probes start behind their "
                  "planned time.\n# TYPE healthagg_scheduler_lag_seconds histogram\n");
    uint64_t cumulative = 0;
    for (unsigned i = 0; i <= HA_HIST_BUCKETS; i++) {
        cumulative += v->sched_lag->buckets[i];
        if (i < HA_HIST_BUCKETS)
            tb_printf(&b, "healthagg_scheduler_lag_seconds_bucket{le=\"%g\"} %llu\n",
                      (double)ha_hist_bounds_us[i] / 1e6, (unsigned long long)cumulative);
        else
            tb_printf(&b, "healthagg_scheduler_lag_seconds_bucket{le=\"+Inf\"} %llu\n",
                      (unsigned long long)cumulative);
    }
    tb_printf(
        &b,
        "healthagg_scheduler_lag_seconds_sum %.6f\nhealthagg_scheduler_lag_seconds_count %llu\n",
        (double)v->sched_lag->sum_us / 1e6, (unsigned long long)v->sched_lag->count);
    tb_printf(&b,
              "# HELP healthagg_probes_skipped_total Probes not started because the previous "
              "one was still closing.\n# TYPE healthagg_probes_skipped_total counter\n"
              "healthagg_probes_skipped_total %llu\n",
              (unsigned long long)v->probes_skipped);
    tb_printf(&b,
              "# HELP healthagg_start_time_seconds Unix time the sidecar started.\n"
              "# TYPE healthagg_start_time_seconds gauge\nhealthagg_start_time_seconds %.3f\n",
              (double)v->start_wall_ms / 1e3);
    ha_response *r = NULL;
    if (!b.failed)
        r = ha_response_new(200, "text/plain; version=0.0.4; charset=utf-8", NULL, b.data, b.len);
    free(b.data);
    return r;
}
