/* test_render.c - /readyz text, health+json fields, Prometheus lines, response framing. */
#include "healthagg/render.h"
#include "healthagg/check_type.h"
#include "unit.h"

#include <cJSON.h>
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

int main(void)
{
    framing();
    views();
    return unit_report("unit.render");
}
