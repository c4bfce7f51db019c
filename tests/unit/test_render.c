/* test_render.c - /readyz text, health+json fields, Prometheus lines, response framing. */
#include "healthagg/render.h"
#include "healthagg/check_type.h"
#include "unit.h"

#include <cJSON.h>
#include <stdarg.h>
#include <stdlib.h>

/* The body as a string (the buffer holds head, body, then the closing head). */
static const char *body_of(const ha_response *r)
{
    static char buf[1 << 20];
    size_t n = r->len - r->head_len;
    if (n >= sizeof(buf))
        n = sizeof(buf) - 1;
    memcpy(buf, r->data + r->head_len, n);
    buf[n] = '\0';
    return buf;
}

static void framing(void)
{
    ha_response *r = ha_response_new(200, "text/plain", "X-A: b\r\n", "hi\n", 3);
    CHECK(r != NULL);
    CHECK(strncmp(r->data, "HTTP/1.1 200 OK\r\n", 17) == 0);
    CHECK_STR_CONTAINS(r->data, "Content-Length: 3\r\n");
    CHECK_STR_CONTAINS(r->data, "X-A: b\r\n\r\nhi\n");
    CHECK(r->len == r->head_len + 3);
    CHECK(memcmp(r->data + r->head_len - 4, "\r\n\r\n", 4) == 0);
    CHECK(strcmp(body_of(r), "hi\n") == 0);
    /* The head sent on a connection's last response says so. */
    const char *close_head = r->data + r->len;
    CHECK(r->close_head_len == r->head_len + strlen("Connection: close\r\n"));
    CHECK(strncmp(close_head, "HTTP/1.1 200 OK\r\n", 17) == 0);
    CHECK(strstr(close_head, "X-A: b\r\nConnection: close\r\n\r\n") != NULL);
    ha_response *c = ha_response_new(405, "text/plain", "Connection: close\r\n", "x", 1);
    CHECK(c && c->close_head_len == c->head_len); /* never twice */
    ha_response_unref(c);
    ha_response_ref(r);
    CHECK(r->refs == 2);
    ha_response_unref(r);
    ha_response_unref(r);
}

static void views(void)
{
    ha_check_config cfg[2];
    ha_check_state st[2];
    memset(cfg, 0, sizeof(cfg));
    memset(st, 0, sizeof(st));
    strcpy(cfg[0].name, "app");
    strcpy(cfg[0].url_text, "http://127.0.0.1:8080/healthz");
    cfg[0].row = ha_scheme_lookup("http");
    cfg[0].critical = true;
    strcpy(cfg[1].name, "db");
    strcpy(cfg[1].url_text, "tcp://127.0.0.1:5432");
    cfg[1].row = ha_scheme_lookup("tcp");
    st[0].status = HA_CHECK_FAIL;
    st[0].has_result = true;
    st[0].last.latency_us = 2500;
    st[0].last_wall_ms = 1795000000123ULL;
    st[0].consecutive_failures = 3;
    strcpy(st[0].last.reason, "HTTP 503 \"quoted\"");
    st[1].status = HA_CHECK_STARTING;

    ha_view v;
    memset(&v, 0, sizeof(v));
    v.cfg = cfg;
    v.st = st;
    v.n = 2;
    v.agg = HA_AGG_FAIL;
    v.summary = "app: HTTP 503";
    v.enforce = true;
    ha_histogram lag;
    memset(&lag, 0, sizeof(lag));
    ha_histogram_observe(&lag, 300);     /* <= 0.5 ms */
    ha_histogram_observe(&lag, 3000);    /* <= 5 ms */
    ha_histogram_observe(&lag, 2000000); /* beyond 1 s */
    v.sched_lag = &lag;

    ha_response *r = ha_render_readyz(&v);
    CHECK(r && r->status == 503 && strcmp(body_of(r), "app: HTTP 503\n") == 0);
    ha_response_unref(r);

    /* Report-only: /readyz stays 200 and says what it would have said; draining still 503. */
    v.enforce = false;
    r = ha_render_readyz(&v);
    CHECK(r && r->status == 200 &&
          strcmp(body_of(r), "ok (report-only: would fail: app: HTTP 503)\n") == 0);
    ha_response_unref(r);
    v.agg = HA_AGG_DRAINING;
    v.summary = "draining";
    r = ha_render_readyz(&v);
    CHECK(r && r->status == 503 && strcmp(body_of(r), "draining\n") == 0);
    ha_response_unref(r);
    r = ha_render_metrics(&v);
    CHECK(r && strstr(r->data, "\nhealthagg_enforced 0\n") != NULL);
    ha_response_unref(r);
    v.agg = HA_AGG_FAIL;
    v.summary = "app: HTTP 503";
    v.enforce = true;

    r = ha_render_health(&v);
    CHECK(r && r->status == 503);
    CHECK_STR_CONTAINS(r->data, "Content-Type: application/health+json\r\n");
    cJSON *doc = cJSON_Parse(body_of(r));
    CHECK(doc != NULL);
    if (doc) {
        CHECK(strcmp(cJSON_GetObjectItem(doc, "status")->valuestring, "fail") == 0);
        cJSON *checks = cJSON_GetObjectItem(doc, "checks");
        cJSON *app = cJSON_GetArrayItem(cJSON_GetObjectItem(checks, "app"), 0);
        CHECK(app != NULL);
        if (app) {
            CHECK(strcmp(cJSON_GetObjectItem(app, "status")->valuestring, "fail") == 0);
            CHECK(cJSON_GetObjectItem(app, "observedValue")->valuedouble == 2.5);
            CHECK(strcmp(cJSON_GetObjectItem(app, "observedUnit")->valuestring, "ms") == 0);
            CHECK(strcmp(cJSON_GetObjectItem(app, "time")->valuestring,
                         "2026-11-18T11:06:40.123Z") == 0);
            CHECK(strcmp(cJSON_GetObjectItem(app, "output")->valuestring, "HTTP 503 \"quoted\"") ==
                  0);
            CHECK(strcmp(cJSON_GetObjectItem(app, "componentType")->valuestring, "http") == 0);
        }
        cJSON *db = cJSON_GetArrayItem(cJSON_GetObjectItem(checks, "db"), 0);
        CHECK(db && strcmp(cJSON_GetObjectItem(db, "status")->valuestring, "warn") == 0);
        CHECK(db && strcmp(cJSON_GetObjectItem(db, "output")->valuestring, "no result yet") == 0);
        CHECK(db && cJSON_GetObjectItem(db, "observedValue") == NULL);
        cJSON_Delete(doc);
    }
    ha_response_unref(r);

    v.agg = HA_AGG_WARN;
    r = ha_render_health(&v);
    CHECK(r && r->status == 200);
    ha_response_unref(r);

    r = ha_render_metrics(&v);
    CHECK(r && r->status == 200);
    if (r) {
        CHECK_STR_CONTAINS(body_of(r), "healthagg_up 1\n");
        CHECK_STR_CONTAINS(body_of(r), "healthagg_check_up{check=\"app\"} 0\n");
        CHECK_STR_CONTAINS(body_of(r), "healthagg_check_latency_seconds{check=\"app\"} 0.002500\n");
        CHECK_STR_CONTAINS(body_of(r), "healthagg_check_consecutive_failures{check=\"app\"} 3\n");
        CHECK_STR_CONTAINS(body_of(r),
                           "healthagg_check_state{check=\"db\",state=\"starting\"} 1\n");
        CHECK_STR_CONTAINS(body_of(r), "# TYPE healthagg_check_transitions_total counter\n");
        CHECK_STR_CONTAINS(body_of(r), "healthagg_scheduler_lag_seconds_bucket{le=\"0.0005\"} 1\n");
        CHECK_STR_CONTAINS(body_of(r), "healthagg_scheduler_lag_seconds_bucket{le=\"0.002\"} 1\n");
        CHECK_STR_CONTAINS(body_of(r), "healthagg_scheduler_lag_seconds_bucket{le=\"0.005\"} 2\n");
        CHECK_STR_CONTAINS(body_of(r), "healthagg_scheduler_lag_seconds_bucket{le=\"1\"} 2\n");
        CHECK_STR_CONTAINS(body_of(r), "healthagg_scheduler_lag_seconds_bucket{le=\"+Inf\"} 3\n");
        CHECK_STR_CONTAINS(body_of(r), "healthagg_scheduler_lag_seconds_count 3\n");
        CHECK_STR_CONTAINS(body_of(r), "healthagg_scheduler_lag_max_seconds 2.000000\n");
    }
    ha_response_unref(r);
}

/* The /metrics page as printf writes it: the reference the printf-free renderer must match
 * byte for byte. */
static char *ref_buf;
static size_t ref_len, ref_cap;

static void ref_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void ref_printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (ref_len + (size_t)n + 1 > ref_cap) {
        ref_cap = (ref_len + (size_t)n + 1) * 2;
        ref_buf = realloc(ref_buf, ref_cap);
    }
    va_start(ap, fmt);
    vsnprintf(ref_buf + ref_len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    ref_len += (size_t)n;
}

static void ref_histogram(const char *name, const char *help, const ha_histogram *h)
{
    ref_printf("# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    uint64_t cum = 0;
    for (unsigned i = 0; i <= HA_HIST_BUCKETS; i++) {
        cum += h->buckets[i];
        if (i < HA_HIST_BUCKETS)
            ref_printf("%s_bucket{le=\"%g\"} %llu\n", name, (double)ha_hist_bounds_us[i] / 1e6,
                       (unsigned long long)cum);
        else
            ref_printf("%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)cum);
    }
    ref_printf("%s_sum %.6f\n%s_count %llu\n", name, (double)h->sum_us / 1e6, name,
               (unsigned long long)h->count);
}

static const char *ref_metrics(const ha_view *v)
{
    static const char *names[] = {
        "healthagg_check_up",
        "healthagg_check_state",
        "healthagg_check_latency_seconds",
        "healthagg_check_consecutive_failures",
        "healthagg_check_last_success_timestamp_seconds",
        "healthagg_check_transitions_total",
        "healthagg_check_probes_total",
        "healthagg_check_failures_total",
        "healthagg_check_probe_errors_total",
        "healthagg_check_cert_expiry_timestamp_seconds",
        "healthagg_check_degraded",
    };
    static const char *help[] = {
        "gauge 1 when the check passes.",
        "gauge Check state, one series per state.",
        "gauge Duration of the last probe.",
        "gauge Consecutive failed probes counted toward failure_threshold.",
        "gauge Unix time of the last passing probe (0: never).",
        "counter State changes of the check.",
        "counter Probes run.",
        "counter Probes that failed.",
        "counter Probes that failed on our side (no file descriptors or memory); not counted.",
        "gauge Unix time the TLS peer certificate expires (notAfter, from the last full "
        "handshake).",
        "gauge 1 when the check passes but its last probe was degraded (slower than "
        "warn_latency, or a certificate near expiry): warn in /health.",
    };
    ref_len = 0;
    ref_printf("# HELP healthagg_up 1 when the aggregate is pass or warn (the real verdict, also "
               "in report-only mode).\n# TYPE healthagg_up gauge\nhealthagg_up %d\n",
               ha_agg_ready(v->agg));
    ref_printf("# HELP healthagg_enforced 0 in report-only mode (\"enforce\": false): /readyz "
               "stays 200 whatever the checks say.\n# TYPE healthagg_enforced gauge\n"
               "healthagg_enforced %d\n",
               v->enforce);
    ref_printf("# HELP healthagg_aggregate_state Aggregate state, one series per state.\n"
               "# TYPE healthagg_aggregate_state gauge\n");
    for (int a = HA_AGG_STARTING; a <= HA_AGG_DRAINING; a++)
        ref_printf("healthagg_aggregate_state{state=\"%s\"} %d\n",
                   ha_agg_status_name((ha_agg_status)a), (int)v->agg == a);
    for (int f = 0; f < 11; f++) {
        const char *type_end = strchr(help[f], ' ');
        ref_printf("# HELP %s %s\n# TYPE %s %.*s\n", names[f], type_end + 1, names[f],
                   (int)(type_end - help[f]), help[f]);
        for (size_t i = 0; i < v->n; i++) {
            const ha_check_state *s = &v->st[i];
            const char *c = v->cfg[i].name, *m = names[f];
            switch (f) {
            case 0:
                ref_printf("%s{check=\"%s\"} %d\n", m, c, s->status == HA_CHECK_PASS);
                break;
            case 1:
                for (int st = HA_CHECK_STARTING; st <= HA_CHECK_FAIL; st++)
                    ref_printf("%s{check=\"%s\",state=\"%s\"} %d\n", m, c,
                               ha_check_status_name((ha_check_status)st), (int)s->status == st);
                break;
            case 2:
                ref_printf("%s{check=\"%s\"} %.6f\n", m, c, (double)s->last.latency_us / 1e6);
                break;
            case 3:
                ref_printf("%s{check=\"%s\"} %u\n", m, c, s->consecutive_failures);
                break;
            case 4:
                ref_printf("%s{check=\"%s\"} %.3f\n", m, c, (double)s->last_success_wall_ms / 1e3);
                break;
            case 10:
                ref_printf("%s{check=\"%s\"} %d\n", m, c,
                           s->status == HA_CHECK_PASS && s->has_result && s->last.ok &&
                               s->last.degraded);
                break;
            case 9:
                if (s->cert_not_after)
                    ref_printf("%s{check=\"%s\"} %lld\n", m, c, (long long)s->cert_not_after);
                break;
            default: {
                uint64_t x = f == 5   ? s->transitions
                             : f == 6 ? s->probes_total
                             : f == 7 ? s->failures_total
                                      : s->inconclusive_total;
                ref_printf("%s{check=\"%s\"} %llu\n", m, c, (unsigned long long)x);
            }
            }
        }
    }
    ref_printf("# HELP healthagg_scheduler_lag_max_seconds Largest delay of a probe behind its "
               "planned start.\n# TYPE healthagg_scheduler_lag_max_seconds gauge\n"
               "healthagg_scheduler_lag_max_seconds %.6f\n",
               (double)v->sched_lag->max_us / 1e6);
    ref_histogram("healthagg_scheduler_lag_seconds",
                  "How late probes start behind their planned time.", v->sched_lag);
    if (v->loop_turn) {
        ref_printf("# HELP healthagg_loop_turn_max_seconds Most CPU time one event loop turn "
                   "used (work between two waits for events) since start.\n"
                   "# TYPE healthagg_loop_turn_max_seconds gauge\n"
                   "healthagg_loop_turn_max_seconds %.6f\n",
                   (double)v->loop_turn->max_us / 1e6);
        ref_histogram(
            "healthagg_loop_turn_seconds",
            "Event loop turns by the CPU time of their work between two waits for events.",
            v->loop_turn);
    }
    ref_printf("# HELP healthagg_probes_skipped_total Probes not started because the previous "
               "one was still closing.\n# TYPE healthagg_probes_skipped_total counter\n"
               "healthagg_probes_skipped_total %llu\n",
               (unsigned long long)v->probes_skipped);
    ref_printf("# HELP healthagg_start_time_seconds Unix time the sidecar started.\n"
               "# TYPE healthagg_start_time_seconds gauge\nhealthagg_start_time_seconds %.3f\n",
               (double)v->start_wall_ms / 1e3);
    return ref_buf;
}

static uint64_t rnd_state = 0x9E3779B97F4A7C15ULL;
static uint64_t rnd(void)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 7;
    rnd_state ^= rnd_state << 17;
    return rnd_state;
}

/* A number of a random magnitude, so every digit count is exercised. Latencies stay below
 * 2^40 us (12 days), where printf of the double and the integer formatting agree exactly. */
static uint64_t rnd_value(uint64_t max)
{
    uint64_t v = rnd() >> (rnd() % 64);
    return max ? v % max : v;
}

/* The retained renderer, re-used across renders with random checks changing in between (some
 * with a new result, some untouched), equals the printf reference byte for byte. */
static void metrics_cached_matches_printf(void)
{
    enum { N = 70 };
    static ha_check_config cfg[N];
    static ha_check_state st[N];
    memset(cfg, 0, sizeof(cfg));
    memset(st, 0, sizeof(st));
    for (size_t i = 0; i < N; i++) {
        snprintf(cfg[i].name, sizeof(cfg[i].name), i % 7 ? "check-%zu" : "[::1]:%zu", i);
        if (i == N - 1)
            memset(cfg[i].name, 'x', sizeof(cfg[i].name) - 1); /* the longest name */
        st[i].status = HA_CHECK_STARTING;
    }
    ha_histogram lag, turn;
    memset(&lag, 0, sizeof(lag));
    memset(&turn, 0, sizeof(turn));
    ha_view v;
    memset(&v, 0, sizeof(v));
    v.cfg = cfg;
    v.st = st;
    v.n = N;
    v.summary = "x";
    v.enforce = true;
    v.sched_lag = &lag;
    v.loop_turn = &turn;
    v.start_wall_ms = 1795000000123ULL;
    ha_metrics_cache *m = ha_metrics_cache_new(cfg, N);
    CHECK(m != NULL);
    unsigned mismatches = 0;
    for (int round = 0; round < 300 && m; round++) {
        size_t changes = rnd() % (round % 10 == 0 ? N : 4);
        for (size_t k = 0; k < changes; k++) {
            ha_check_state *s = &st[rnd() % N];
            s->status = (ha_check_status)(rnd() % 3);
            s->last.latency_us = rnd_value(round % 3 ? 120000000 : 1ULL << 40);
            s->last_success_wall_ms = rnd() % 5 ? 1790000000000ULL + rnd_value(1ULL << 36) : 0;
            s->consecutive_failures = (unsigned)rnd_value(0);
            s->transitions = rnd_value(0);
            s->failures_total = rnd_value(0);
            s->cert_not_after = rnd() % 3 ? 0 : (int64_t)rnd_value(0) * (rnd() % 5 ? 1 : -1);
            s->has_result = rnd() % 4 != 0;
            s->last.ok = rnd() % 3 != 0;
            s->last.degraded = rnd() % 2;
            if (rnd() % 4)
                s->probes_total++;
            else
                s->inconclusive_total++;
        }
        ha_histogram_observe(&lag, rnd_value(3000000));
        ha_histogram_observe(&turn, rnd_value(30000));
        v.agg = (ha_agg_status)(rnd() % 5);
        v.enforce = rnd() % 2;
        v.loop_turn = round % 5 ? &turn : NULL;
        v.probes_skipped = rnd_value(0);
        ha_response *r = ha_render_metrics_cached(m, &v);
        const char *want = ref_metrics(&v);
        if (!r || r->len - r->head_len != ref_len ||
            memcmp(r->data + r->head_len, want, ref_len) != 0) {
            if (mismatches++ == 0 && r)
                fprintf(stderr, "round %d: got\n%.*s\nwant\n%s\n", round,
                        (int)(r->len - r->head_len), r->data + r->head_len, want);
        }
        ha_response_unref(r);
    }
    CHECK(mismatches == 0);
    /* A one-shot render is the same page. */
    ha_response *a = ha_render_metrics(&v), *b = m ? ha_render_metrics_cached(m, &v) : NULL;
    CHECK(a && b && a->len == b->len && memcmp(a->data, b->data, a->len) == 0);
    ha_response_unref(a);
    ha_response_unref(b);
    ha_metrics_cache_free(m);
    free(ref_buf);
}

int main(void)
{
    framing();
    views();
    metrics_cached_matches_printf();
    return unit_report("unit.render");
}
