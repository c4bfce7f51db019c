/* test_aggregate.c - the verdict rules and the one-line summary /readyz and probe print. */
#include "healthagg/aggregate.h"
#include "healthagg/quote.h"
#include "unit.h"

#define N 3

static ha_check_config cfgs[N];
static ha_check_state sts[N];

static void setup(void)
{
    memset(cfgs, 0, sizeof(cfgs));
    memset(sts, 0, sizeof(sts));
    const char *names[N] = {"app", "cache", "db"};
    for (int i = 0; i < N; i++) {
        strcpy(cfgs[i].name, names[i]);
        cfgs[i].critical = true;
        sts[i].status = HA_CHECK_PASS;
        sts[i].has_result = true;
        strcpy(sts[i].last.reason, "HTTP 200");
    }
    cfgs[2].critical = false;
}

static void set(int i, ha_check_status st, const char *reason)
{
    sts[i].status = st;
    strcpy(sts[i].last.reason, reason);
}

static void rules(void)
{
    char buf[HA_SUMMARY_MAX];
    setup();
    CHECK(ha_aggregate(cfgs, sts, N, false) == HA_AGG_PASS);
    ha_aggregate_summary(HA_AGG_PASS, cfgs, sts, N, buf, sizeof(buf));
    CHECK(strcmp(buf, "ok") == 0);
    CHECK(ha_agg_ready(HA_AGG_PASS) && ha_agg_ready(HA_AGG_WARN));
    CHECK(!ha_agg_ready(HA_AGG_FAIL) && !ha_agg_ready(HA_AGG_STARTING) &&
          !ha_agg_ready(HA_AGG_DRAINING));

    /* A non-critical failure only warns. */
    set(2, HA_CHECK_FAIL, "connect: connection refused (10.0.0.12:5432)");
    CHECK(ha_aggregate(cfgs, sts, N, false) == HA_AGG_WARN);
    ha_aggregate_summary(HA_AGG_WARN, cfgs, sts, N, buf, sizeof(buf));
    CHECK(strcmp(buf, "ok (warn: db: connect: connection refused (10.0.0.12:5432))") == 0);

    /* A critical check still starting holds readiness back. */
    set(1, HA_CHECK_STARTING, "timeout after 2000ms (connecting)");
    CHECK(ha_aggregate(cfgs, sts, N, false) == HA_AGG_STARTING);
    ha_aggregate_summary(HA_AGG_STARTING, cfgs, sts, N, buf, sizeof(buf));
    CHECK(strcmp(buf, "starting: cache: timeout after 2000ms (connecting)") == 0);
    sts[1].has_result = false;
    ha_aggregate_summary(HA_AGG_STARTING, cfgs, sts, N, buf, sizeof(buf));
    CHECK(strcmp(buf, "starting: cache: no result yet") == 0);

    /* A critical failure beats starting. */
    set(0, HA_CHECK_FAIL, "HTTP 503");
    CHECK(ha_aggregate(cfgs, sts, N, false) == HA_AGG_FAIL);
    ha_aggregate_summary(HA_AGG_FAIL, cfgs, sts, N, buf, sizeof(buf));
    CHECK(strcmp(buf, "app: HTTP 503") == 0);
    sts[1].has_result = true;
    set(1, HA_CHECK_FAIL, "timeout after 2000ms (waiting for response)");
    ha_aggregate_summary(HA_AGG_FAIL, cfgs, sts, N, buf, sizeof(buf));
    CHECK(strcmp(buf, "app: HTTP 503; cache: timeout after 2000ms (waiting for response)") == 0);

    /* Draining beats everything. */
    CHECK(ha_aggregate(cfgs, sts, N, true) == HA_AGG_DRAINING);
    ha_aggregate_summary(HA_AGG_DRAINING, cfgs, sts, N, buf, sizeof(buf));
    CHECK(strcmp(buf, "draining") == 0);
    CHECK(strcmp(ha_agg_status_name(HA_AGG_WARN), "warn") == 0);

    /* The summary never overflows; a cut is marked. */
    char small[24];
    ha_aggregate_summary(HA_AGG_FAIL, cfgs, sts, N, small, sizeof(small));
    CHECK(strlen(small) == sizeof(small) - 1);
    CHECK(strcmp(small + strlen(small) - 3, "...") == 0);

    /* Only non-critical checks: their failures never fail the task. */
    setup();
    for (int i = 0; i < N; i++)
        cfgs[i].critical = false;
    set(0, HA_CHECK_FAIL, "x");
    set(1, HA_CHECK_STARTING, "y");
    CHECK(ha_aggregate(cfgs, sts, N, false) == HA_AGG_WARN);

    /* Before the first result, with only non-critical checks, the reason names them. */
    setup();
    for (int i = 0; i < N; i++) {
        cfgs[i].critical = false;
        sts[i].status = HA_CHECK_STARTING;
        sts[i].has_result = false;
    }
    ha_aggregate_summary(HA_AGG_STARTING, cfgs, sts, N, buf, sizeof(buf));
    CHECK(strcmp(buf, "starting: app: no result yet; cache: no result yet; db: no result yet") ==
          0);
    ha_aggregate_summary(HA_AGG_STARTING, cfgs, sts, 0, buf, sizeof(buf));
    CHECK(strcmp(buf, "starting: no result yet") == 0);

    /* A failing check passing again, but not yet success_threshold times, says so. */
    setup();
    cfgs[0].success_threshold = 3;
    set(0, HA_CHECK_FAIL, "HTTP 200");
    strcpy(sts[0].last_failure, "HTTP 503");
    sts[0].consecutive_successes = 1;
    ha_aggregate_summary(HA_AGG_FAIL, cfgs, sts, N, buf, sizeof(buf));
    CHECK(strcmp(buf, "app: recovering: 1/3 successes (last failure: HTTP 503)") == 0);

    /* A cut never splits a character. */
    setup();
    set(0, HA_CHECK_FAIL, "body did not match \"\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\"");
    for (size_t len = 8; len < 40; len++) {
        char cut[40];
        ha_aggregate_summary(HA_AGG_FAIL, cfgs, sts, N, cut, len);
        size_t n = strlen(cut);
        CHECK(n < len);
        CHECK(ha_utf8_invalid_at(cut, n) == n);
    }
}

/* A passing check whose last probe was degraded (a TLS certificate about to expire) makes the
 * aggregate warn, still ready, with its reason; a critical failure still wins. */
static void degraded(void)
{
    char buf[HA_SUMMARY_MAX];
    setup();
    sts[0].last.ok = true;
    sts[0].last.degraded = true;
    strcpy(sts[0].last.reason,
           "HTTP 200; certificate expires in 3d (notAfter 2026-12-02T00:00:00Z)");
    CHECK(ha_aggregate(cfgs, sts, N, false) == HA_AGG_WARN);
    ha_aggregate_summary(HA_AGG_WARN, cfgs, sts, N, buf, sizeof(buf));
    CHECK(strcmp(buf, "ok (warn: app: HTTP 200; certificate expires in 3d (notAfter "
                      "2026-12-02T00:00:00Z))") == 0);
    set(2, HA_CHECK_FAIL, "HTTP 503");
    ha_aggregate_summary(HA_AGG_WARN, cfgs, sts, N, buf, sizeof(buf));
    CHECK(strncmp(buf, "ok (warn: db: HTTP 503; app: HTTP 200; certificate expires", 58) == 0);
    set(1, HA_CHECK_FAIL, "HTTP 500");
    CHECK(ha_aggregate(cfgs, sts, N, false) == HA_AGG_FAIL);
    /* not degraded once the check fails */
    setup();
    sts[0].last.degraded = true; /* ok is false: a failed probe is never "degraded" */
    CHECK(ha_aggregate(cfgs, sts, N, false) == HA_AGG_PASS);
}

int main(void)
{
    rules();
    degraded();
    return unit_report("unit.aggregate");
}
