/* test_state.c - the threshold state machine: consecutive counts, start period, recovery. */
#include "healthagg/state.h"
#include "unit.h"

static ha_result ok_result(void)
{
    ha_result r;
    memset(&r, 0, sizeof(r));
    r.ok = true;
    r.http_status = 200;
    strcpy(r.reason, "HTTP 200");
    return r;
}

static ha_result bad_result(void)
{
    ha_result r;
    memset(&r, 0, sizeof(r));
    strcpy(r.reason, "HTTP 503");
    r.http_status = 503;
    return r;
}

static ha_check_config cfg(unsigned fail, unsigned succ, uint64_t start_period)
{
    ha_check_config c;
    memset(&c, 0, sizeof(c));
    c.failure_threshold = fail;
    c.success_threshold = succ;
    c.start_period_ms = start_period;
    c.interval_ms = 1000;
    return c;
}

static void thresholds(void)
{
    ha_check_config c = cfg(3, 2, 0);
    ha_check_state s;
    ha_result ok = ok_result(), bad = bad_result();
    ha_state_init(&s, 0);
    CHECK(s.status == HA_CHECK_STARTING);
    /* Starting: one success is enough, whatever success_threshold says. */
    CHECK(ha_state_apply(&s, &c, &ok, 10, 1000) == true);
    CHECK(s.status == HA_CHECK_PASS && s.transitions == 1 && s.last_success_wall_ms == 1000);
    /* Two failures are not enough, the third is. */
    CHECK(!ha_state_apply(&s, &c, &bad, 20, 0) && s.status == HA_CHECK_PASS);
    CHECK(!ha_state_apply(&s, &c, &bad, 30, 0) && s.consecutive_failures == 2);
    /* A success in between resets the count. */
    CHECK(!ha_state_apply(&s, &c, &ok, 40, 0) && s.consecutive_failures == 0);
    ha_state_apply(&s, &c, &bad, 50, 0);
    ha_state_apply(&s, &c, &bad, 60, 0);
    CHECK(s.status == HA_CHECK_PASS);
    CHECK(ha_state_apply(&s, &c, &bad, 70, 0) && s.status == HA_CHECK_FAIL);
    CHECK(s.consecutive_failures == 3 && s.transitions == 2);
    CHECK(strcmp(s.last.reason, "HTTP 503") == 0);
    /* Recovery needs success_threshold (2) in a row. */
    CHECK(!ha_state_apply(&s, &c, &ok, 80, 0) && s.status == HA_CHECK_FAIL);
    CHECK(!ha_state_apply(&s, &c, &bad, 90, 0) && s.status == HA_CHECK_FAIL);
    CHECK(!ha_state_apply(&s, &c, &ok, 100, 0));
    CHECK(ha_state_apply(&s, &c, &ok, 110, 0) && s.status == HA_CHECK_PASS);
    CHECK(s.transitions == 3 && s.probes_total == 11 && s.failures_total == 6);
}

static void start_period(void)
{
    ha_check_config c = cfg(2, 1, 1000);
    ha_check_state s;
    ha_result ok = ok_result(), bad = bad_result();
    ha_state_init(&s, 5000);
    /* Failures inside the start period don't count. */
    for (int i = 0; i < 5; i++)
        CHECK(!ha_state_apply(&s, &c, &bad, 5000 + (uint64_t)i * 100, 0));
    CHECK(s.status == HA_CHECK_STARTING && s.consecutive_failures == 0 && s.failures_total == 5);
    /* After it, they do: two in a row and the check fails. */
    CHECK(!ha_state_apply(&s, &c, &bad, 6000, 0) && s.consecutive_failures == 1);
    CHECK(ha_state_apply(&s, &c, &bad, 6100, 0) && s.status == HA_CHECK_FAIL);

    /* A success inside the start period ends it at once. */
    ha_state_init(&s, 0);
    ha_state_apply(&s, &c, &bad, 10, 0);
    CHECK(ha_state_apply(&s, &c, &ok, 20, 0) && s.status == HA_CHECK_PASS);
    /* ...and later failures count even though the period hasn't elapsed. */
    ha_state_apply(&s, &c, &bad, 30, 0);
    CHECK(ha_state_apply(&s, &c, &bad, 40, 0) && s.status == HA_CHECK_FAIL);

    /* No start period: failures count from the first probe. */
    c = cfg(1, 1, 0);
    ha_state_init(&s, 0);
    CHECK(ha_state_apply(&s, &c, &bad, 0, 0) && s.status == HA_CHECK_FAIL);
    CHECK(strcmp(ha_check_status_name(s.status), "fail") == 0);
}

static void inconclusive(void)
{
    ha_check_config c = cfg(1, 1, 0);
    ha_check_state s;
    ha_result ok = ok_result(), local = bad_result();
    local.inconclusive = true;
    strcpy(local.reason, "connect: too many open files (127.0.0.1:8080)");
    ha_state_init(&s, 0);
    ha_state_apply(&s, &c, &ok, 0, 0);
    /* Our own resource trouble neither fails the check nor resets its counts. */
    for (int i = 0; i < 5; i++)
        CHECK(!ha_state_apply(&s, &c, &local, 10, 0));
    CHECK(s.status == HA_CHECK_PASS && s.consecutive_successes == 1);
    CHECK(s.inconclusive_total == 5 && s.failures_total == 0 && s.probes_total == 1);
    CHECK(strcmp(s.last.reason, "HTTP 200") == 0);
}

/* The reason shown while a failing check recovers (issue 8 item 8). */
static void recovering_reason(void)
{
    ha_check_config c = cfg(1, 3, 0);
    ha_check_state s;
    ha_result ok = ok_result(), bad = bad_result();
    char why[HA_REASON_MAX + 64];
    ha_state_init(&s, 0);
    ha_state_reason(&s, &c, why, sizeof(why));
    CHECK(strcmp(why, "no result yet") == 0);
    ha_state_apply(&s, &c, &bad, 0, 0);
    CHECK(s.status == HA_CHECK_FAIL);
    ha_state_reason(&s, &c, why, sizeof(why));
    CHECK(strcmp(why, "HTTP 503") == 0);
    ha_state_apply(&s, &c, &ok, 0, 0);
    ha_state_reason(&s, &c, why, sizeof(why));
    CHECK(strcmp(why, "recovering: 1/3 successes (last failure: HTTP 503)") == 0);
    ha_state_apply(&s, &c, &ok, 0, 0);
    ha_state_reason(&s, &c, why, sizeof(why));
    CHECK(strcmp(why, "recovering: 2/3 successes (last failure: HTTP 503)") == 0);
    ha_state_apply(&s, &c, &ok, 0, 0);
    CHECK(s.status == HA_CHECK_PASS);
    ha_state_reason(&s, &c, why, sizeof(why));
    CHECK(strcmp(why, "HTTP 200") == 0);
}

int main(void)
{
    recovering_reason();
    inconclusive();
    thresholds();
    start_period();
    return unit_report("unit.state");
}
