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

/* xorshift: a fixed seed, so a failure reproduces. */
static uint64_t rnd_state = 0x2545F4914F6CDD1DULL;
static uint64_t rnd(void)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 7;
    rnd_state ^= rnd_state << 17;
    return rnd_state;
}

/* The incremental tracker equals the full fold after every result of random sequences: random
 * configs (critical or not, thresholds, start periods), results passing (some degraded) and
 * failing with a handful of reasons, inconclusive results, draining; and when it says the summary
 * cannot have changed, the full recomputation agrees. */
static void tracker_matches_fold(void)
{
    static const char *reasons[] = {"HTTP 200", "HTTP 503", "connection refused",
                                    "timeout after 90 ms"};
    enum { MAXN = 150 };
    static ha_check_config cfg[MAXN];
    static ha_check_state st[MAXN];
    size_t sizes[] = {1, 2, 3, 63, 64, 65, 150};
    unsigned mismatches = 0, skipped_rebuilds = 0, rebuilds = 0;
    for (size_t round = 0; round < 40; round++) {
        size_t n = sizes[round % (sizeof(sizes) / sizeof(sizes[0]))];
        memset(cfg, 0, sizeof(cfg));
        for (size_t i = 0; i < n; i++) {
            snprintf(cfg[i].name, sizeof(cfg[i].name), "c%zu", i);
            cfg[i].critical = rnd() % 3 != 0;
            cfg[i].failure_threshold = 1 + (unsigned)(rnd() % 3);
            cfg[i].success_threshold = 1 + (unsigned)(rnd() % 3);
            cfg[i].start_period_ms = rnd() % 2 ? 0 : 50;
            ha_state_init(&st[i], 0);
        }
        ha_agg_tracker t;
        CHECK(ha_agg_tracker_init(&t, cfg, st, n) == 0);
        char last[HA_SUMMARY_MAX] = "", full[HA_SUMMARY_MAX], inc[HA_SUMMARY_MAX];
        ha_agg_status last_agg = HA_AGG_STARTING;
        bool have_last = false;
        /* Mostly-passing phases and failing storms, so every class is visited. */
        unsigned fail_pct = (unsigned)(rnd() % 100);
        for (uint64_t step = 1; step <= 3000; step++) {
            if (step % 500 == 0)
                fail_pct = (unsigned)(rnd() % 100);
            size_t i = rnd() % n;
            ha_result r;
            memset(&r, 0, sizeof(r));
            r.ok = rnd() % 100 >= fail_pct;
            r.inconclusive = rnd() % 50 == 0;
            r.degraded = rnd() % 4 == 0; /* only counts on a passing probe */
            strcpy(r.reason, r.ok ? reasons[0] : reasons[1 + rnd() % 3]);
            ha_state_apply(&st[i], &cfg[i], &r, step, 1000 + step);
            ha_agg_tracker_update(&t, i, &cfg[i], &st[i]);
            bool draining = step > 2900 && rnd() % 2;
            ha_agg_status want = ha_aggregate(cfg, st, n, draining);
            ha_agg_status got = ha_agg_tracker_status(&t, draining);
            if (want != got) {
                mismatches++;
                continue;
            }
            ha_aggregate_summary(want, cfg, st, n, full, sizeof(full));
            if (!t.summary_dirty && have_last && got == last_agg) {
                skipped_rebuilds++;
                if (strcmp(full, last) != 0)
                    mismatches++;
                continue;
            }
            ha_agg_tracker_summary(&t, got, cfg, st, inc, sizeof(inc));
            rebuilds++;
            CHECK(!t.summary_dirty);
            if (strcmp(full, inc) != 0)
                mismatches++;
            memcpy(last, inc, sizeof(last));
            last_agg = got;
            have_last = true;
        }
        ha_agg_tracker_free(&t);
    }
    CHECK(mismatches == 0);
    CHECK(skipped_rebuilds > 1000); /* the point: passing results do not rebuild */
    CHECK(rebuilds > 1000);
}

/* A summary cut at HA_SUMMARY_MAX reads the same from the bitmap as from the full fold. */
static void tracker_long_summary(void)
{
    enum { MAXN = 300 };
    static ha_check_config cfg[MAXN];
    static ha_check_state st[MAXN];
    memset(cfg, 0, sizeof(cfg));
    for (size_t i = 0; i < MAXN; i++) {
        snprintf(cfg[i].name, sizeof(cfg[i].name), "check-%zu", i);
        cfg[i].critical = true;
        cfg[i].failure_threshold = 1;
        cfg[i].success_threshold = 1;
        ha_state_init(&st[i], 0);
    }
    ha_agg_tracker t;
    CHECK(ha_agg_tracker_init(&t, cfg, st, MAXN) == 0);
    char full[HA_SUMMARY_MAX], inc[HA_SUMMARY_MAX];
    ha_aggregate_summary(HA_AGG_STARTING, cfg, st, MAXN, full, sizeof(full));
    ha_agg_tracker_summary(&t, ha_agg_tracker_status(&t, false), cfg, st, inc, sizeof(inc));
    CHECK(strcmp(full, inc) == 0);
    CHECK(strlen(inc) == sizeof(inc) - 1 && strcmp(inc + strlen(inc) - 3, "...") == 0);
    ha_result r;
    memset(&r, 0, sizeof(r));
    strcpy(r.reason, "HTTP 500");
    for (size_t i = 0; i < MAXN; i += 3) {
        ha_state_apply(&st[i], &cfg[i], &r, 1, 1);
        ha_agg_tracker_update(&t, i, &cfg[i], &st[i]);
    }
    CHECK(ha_agg_tracker_status(&t, false) == HA_AGG_FAIL);
    ha_aggregate_summary(HA_AGG_FAIL, cfg, st, MAXN, full, sizeof(full));
    ha_agg_tracker_summary(&t, HA_AGG_FAIL, cfg, st, inc, sizeof(inc));
    CHECK(strcmp(full, inc) == 0);
    CHECK(strncmp(inc, "check-0: HTTP 500; check-3: HTTP 500", 36) == 0);
    ha_agg_tracker_free(&t);
}

/* A group: the verdict over its members (ha_aggregate_subset) and the summary over its
 * membership bitmap (ha_aggregate_summary_of), as groups.c keeps them. */
static void subsets(void)
{
    char buf[HA_SUMMARY_MAX];
    setup();
    static const size_t live[] = {0}, ready[] = {0, 1}, deps[] = {1, 2};
    const uint64_t live_bits = 1, ready_bits = 3, deps_bits = 6;
    set(1, HA_CHECK_FAIL, "HTTP 503");
    CHECK(ha_aggregate(cfgs, sts, N, false) == HA_AGG_FAIL);
    CHECK(ha_aggregate_subset(cfgs, sts, live, 1, false) == HA_AGG_PASS);
    CHECK(ha_aggregate_subset(cfgs, sts, ready, 2, false) == HA_AGG_FAIL);
    ha_aggregate_summary_of(HA_AGG_FAIL, cfgs, sts, N, &ready_bits, buf, sizeof(buf));
    CHECK(strcmp(buf, "cache: HTTP 503") == 0);
    ha_aggregate_summary_of(HA_AGG_PASS, cfgs, sts, N, &live_bits, buf, sizeof(buf));
    CHECK(strcmp(buf, "ok") == 0);
    CHECK(ha_aggregate_subset(cfgs, sts, live, 1, true) == HA_AGG_DRAINING);
    /* Only the non-critical db fails in a group that has it: warn, still ready. */
    set(1, HA_CHECK_PASS, "HTTP 200");
    set(2, HA_CHECK_FAIL, "timeout after 2000ms (connecting)");
    CHECK(ha_aggregate_subset(cfgs, sts, deps, 2, false) == HA_AGG_WARN);
    ha_aggregate_summary_of(HA_AGG_WARN, cfgs, sts, N, &deps_bits, buf, sizeof(buf));
    CHECK(strcmp(buf, "ok (warn: db: timeout after 2000ms (connecting))") == 0);
    CHECK(ha_aggregate_subset(cfgs, sts, live, 1, false) == HA_AGG_PASS);
    /* Starting: only the group's own starting checks are named. */
    set(0, HA_CHECK_STARTING, "connect: connection refused (127.0.0.1:8080)");
    CHECK(ha_aggregate_subset(cfgs, sts, deps, 2, false) == HA_AGG_WARN);
    CHECK(ha_aggregate_subset(cfgs, sts, ready, 2, false) == HA_AGG_STARTING);
    ha_aggregate_summary_of(HA_AGG_STARTING, cfgs, sts, N, &ready_bits, buf, sizeof(buf));
    CHECK(strcmp(buf, "starting: app: connect: connection refused (127.0.0.1:8080)") == 0);
    /* The subset of every check is the whole fold. */
    static const size_t all[] = {0, 1, 2};
    CHECK(ha_aggregate_subset(cfgs, sts, all, 3, false) == ha_aggregate(cfgs, sts, N, false));
}

int main(void)
{
    subsets();
    rules();
    degraded();
    tracker_matches_fold();
    tracker_long_summary();
    return unit_report("unit.aggregate");
}
