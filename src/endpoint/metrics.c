/* metrics.c - the /metrics page (Prometheus text format 0.0.4), rendered so that a scrape at a
 * thousand checks does not stall the loop.
 *
 * The page is one family after another, each with one series per check. Every check keeps a
 * retained fragment: its lines of every family, one after the other, with an offset per family.
 * A render rewrites the fragment only of the checks that got a result since the last render
 * (their probe counters moved: every ha_state_apply bumps probes_total or inconclusive_total),
 * formats numbers with the few lines of integer code below instead of printf, and then
 * copies the page family by family, one memcpy per check and family, straight into the
 * response. The few
 * task-wide series around them (aggregate, scheduler lag, loop turns) are small and are
 * printed each time. The trade-off: about twice the page's size of memory kept between
 * scrapes, for a render that costs a copy plus the checks that changed. */
#include "healthagg/render.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Families in the order of the page. */
enum {
    F_UP,
    F_STATE,
    F_LATENCY,
    F_CONSEC_FAIL,
    F_LAST_SUCCESS,
    F_TRANSITIONS,
    F_PROBES,
    F_FAILURES,
    F_INCONCLUSIVE,
    F_CERT_EXPIRY, /* only checks whose TLS certificate was seen have a series */
    F_DEGRADED,
    F_COUNT
};

static const struct family {
    const char *name, *type, *help;
} families[F_COUNT] = {
    [F_UP] = {"healthagg_check_up", "gauge", "1 when the check passes."},
    [F_STATE] = {"healthagg_check_state", "gauge", "Check state, one series per state."},
    [F_LATENCY] = {"healthagg_check_latency_seconds", "gauge", "Duration of the last probe."},
    [F_CONSEC_FAIL] = {"healthagg_check_consecutive_failures", "gauge",
                       "Consecutive failed probes counted toward failure_threshold."},
    [F_LAST_SUCCESS] = {"healthagg_check_last_success_timestamp_seconds", "gauge",
                        "Unix time of the last passing probe (0: never)."},
    [F_TRANSITIONS] = {"healthagg_check_transitions_total", "counter",
                       "State changes of the check."},
    [F_PROBES] = {"healthagg_check_probes_total", "counter", "Probes run."},
    [F_FAILURES] = {"healthagg_check_failures_total", "counter", "Probes that failed."},
    [F_INCONCLUSIVE] = {"healthagg_check_probe_errors_total", "counter",
                        "Probes that failed on our side (no file descriptors or memory); not "
                        "counted."},
    [F_CERT_EXPIRY] = {"healthagg_check_cert_expiry_timestamp_seconds", "gauge",
                       "Unix time the TLS peer certificate expires (notAfter, from the last full "
                       "handshake)."},
    [F_DEGRADED] = {"healthagg_check_degraded", "gauge",
                    "1 when the check passes but its last probe was degraded (slower than "
                    "warn_latency, or a certificate near expiry): warn in /health."},
};

/* Lines of a family per check (healthagg_check_state has one per state). */
#define STATE_LINES (HA_CHECK_FAIL - HA_CHECK_STARTING + 1)
/* Longest state name, a number (20 digits, a dot, up to 6 decimals) and the fixed text. */
#define LINE_EXTRA (sizeof("{check=\"\",state=\"starting\"} \n") + 28)

typedef struct fragment {
    char *text; /* in the cache's arena */
    size_t cap;
    uint32_t off[F_COUNT + 1]; /* family f is text[off[f] .. off[f + 1]) */
    uint64_t seen;             /* probes_total + inconclusive_total when rendered */
    bool valid;
} fragment;

struct ha_metrics_cache {
    size_t n;
    fragment *frag;
    char *arena;
    char *page; /* the page's own text (not the checks' lines), kept for its capacity */
    size_t page_cap;
};

/* Decimal digits of v at p; returns the count. */
static size_t put_u64(char *p, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        p[i] = tmp[n - 1 - i];
    return n;
}

/* v / 10^decimals with exactly `decimals` digits after the point: what printf's "%.6f" gives
 * for (double)us / 1e6 (and "%.3f" for ms / 1e3) at every value a probe or a clock produces,
 * without the double. */
static size_t put_fixed(char *p, uint64_t v, unsigned decimals)
{
    uint64_t scale = 1;
    for (unsigned i = 0; i < decimals; i++)
        scale *= 10;
    size_t n = put_u64(p, v / scale);
    p[n++] = '.';
    uint64_t frac = v % scale;
    for (unsigned i = decimals; i-- > 0;) {
        p[n + i] = (char)('0' + frac % 10);
        frac /= 10;
    }
    return n + decimals;
}

static size_t put_str(char *p, const char *s, size_t len)
{
    memcpy(p, s, len);
    return len;
}

#define PUT_LIT(p, lit) put_str((p), (lit), sizeof(lit) - 1)

/* "<family>{check="<name>"" - the part every series of a check shares. */
static size_t put_series(char *p, const char *family, size_t family_len, const char *name,
                         size_t name_len)
{
    size_t n = put_str(p, family, family_len);
    n += PUT_LIT(p + n, "{check=\"");
    n += put_str(p + n, name, name_len);
    return n + PUT_LIT(p + n, "\"");
}

static size_t fragment_bound(const char *name)
{
    size_t per_line = strlen(name) + LINE_EXTRA, total = 0;
    for (int f = 0; f < F_COUNT; f++)
        total += (strlen(families[f].name) + per_line) * (f == F_STATE ? STATE_LINES : 1);
    return total;
}

static void render_fragment(fragment *fr, const ha_check_config *c, const ha_check_state *s)
{
    char *p = fr->text;
    size_t n = 0, name_len = strlen(c->name);
    for (int f = 0; f < F_COUNT; f++) {
        const char *fam = families[f].name;
        size_t fam_len = strlen(fam);
        fr->off[f] = (uint32_t)n;
        if (f == F_STATE) {
            for (int st = HA_CHECK_STARTING; st <= HA_CHECK_FAIL; st++) {
                const char *sn = ha_check_status_name((ha_check_status)st);
                n += put_series(p + n, fam, fam_len, c->name, name_len);
                n += PUT_LIT(p + n, ",state=\"");
                n += put_str(p + n, sn, strlen(sn));
                n += PUT_LIT(p + n, "\"} ");
                p[n++] = (int)s->status == st ? '1' : '0';
                p[n++] = '\n';
            }
            continue;
        }
        if (f == F_CERT_EXPIRY && !s->cert_not_after)
            continue;
        n += put_series(p + n, fam, fam_len, c->name, name_len);
        p[n++] = '}';
        p[n++] = ' ';
        switch (f) {
        case F_UP:
            p[n++] = s->status == HA_CHECK_PASS ? '1' : '0';
            break;
        case F_DEGRADED:
            p[n++] = ha_agg_degraded(s) ? '1' : '0';
            break;
        case F_LATENCY:
            n += put_fixed(p + n, s->last.latency_us, 6);
            break;
        case F_CONSEC_FAIL:
            n += put_u64(p + n, s->consecutive_failures);
            break;
        case F_LAST_SUCCESS:
            n += put_fixed(p + n, s->last_success_wall_ms, 3);
            break;
        case F_TRANSITIONS:
            n += put_u64(p + n, s->transitions);
            break;
        case F_PROBES:
            n += put_u64(p + n, s->probes_total);
            break;
        case F_FAILURES:
            n += put_u64(p + n, s->failures_total);
            break;
        case F_INCONCLUSIVE:
            n += put_u64(p + n, s->inconclusive_total);
            break;
        case F_CERT_EXPIRY:
            if (s->cert_not_after < 0)
                p[n++] = '-';
            n += put_u64(p + n, s->cert_not_after < 0 ? -(uint64_t)s->cert_not_after
                                                      : (uint64_t)s->cert_not_after);
            break;
        }
        p[n++] = '\n';
    }
    fr->off[F_COUNT] = (uint32_t)n;
}

ha_metrics_cache *ha_metrics_cache_new(const ha_check_config *cfg, size_t n)
{
    ha_metrics_cache *m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    m->n = n;
    m->frag = calloc(n ? n : 1, sizeof(*m->frag));
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += fragment_bound(cfg[i].name);
    m->arena = malloc(total ? total : 1);
    if (!m->frag || !m->arena) {
        ha_metrics_cache_free(m);
        return NULL;
    }
    char *p = m->arena;
    for (size_t i = 0; i < n; i++) {
        m->frag[i].text = p;
        m->frag[i].cap = fragment_bound(cfg[i].name);
        p += m->frag[i].cap;
    }
    return m;
}

void ha_metrics_cache_free(ha_metrics_cache *m)
{
    if (!m)
        return;
    free(m->frag);
    free(m->arena);
    free(m->page);
    free(m);
}

/* The page under construction: the cache's buffer, grown as needed. */
typedef struct page {
    ha_metrics_cache *m;
    size_t len;
    bool failed;
} page;

static char *reserve(page *b, size_t more)
{
    if (b->failed)
        return NULL;
    if (b->len + more > b->m->page_cap) {
        size_t cap = b->m->page_cap * 2 + more + 4096;
        char *d = realloc(b->m->page, cap);
        if (!d) {
            b->failed = true;
            return NULL;
        }
        b->m->page = d;
        b->m->page_cap = cap;
    }
    return b->m->page + b->len;
}

static void appendf(page *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void appendf(page *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *p = n >= 0 ? reserve(b, (size_t)n + 1) : NULL;
    if (!p) {
        b->failed = true;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

static void histogram(page *b, const char *name, const char *help, const ha_histogram *h)
{
    appendf(b, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    uint64_t cumulative = 0;
    for (unsigned i = 0; i <= HA_HIST_BUCKETS; i++) {
        cumulative += h->buckets[i];
        if (i < HA_HIST_BUCKETS)
            appendf(b, "%s_bucket{le=\"%g\"} %llu\n", name, (double)ha_hist_bounds_us[i] / 1e6,
                    (unsigned long long)cumulative);
        else
            appendf(b, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)cumulative);
    }
    appendf(b, "%s_sum %.6f\n%s_count %llu\n", name, (double)h->sum_us / 1e6, name,
            (unsigned long long)h->count);
}

ha_response *ha_render_metrics_cached(ha_metrics_cache *m, const ha_view *v)
{
    if (m->n != v->n)
        return NULL; /* built for another configuration */
    for (size_t i = 0; i < v->n; i++) {
        fragment *fr = &m->frag[i];
        const ha_check_state *s = &v->st[i];
        uint64_t seen = s->probes_total + s->inconclusive_total;
        if (!fr->valid || fr->seen != seen) {
            render_fragment(fr, &v->cfg[i], s);
            fr->seen = seen;
            fr->valid = true;
        }
    }
    /* The page's own text (task-wide series, each family's HELP and TYPE) goes into the page
     * buffer first, so the body's length is known; then the response is allocated once and
     * the pieces are copied into it in page order: text, then per family its head and every
     * check's lines. */
    page b = {m, 0, false};
    size_t fam_at[F_COUNT + 1];
    appendf(&b,
            "# HELP healthagg_up 1 when the aggregate is pass or warn (the real verdict, also in "
            "report-only mode).\n"
            "# TYPE healthagg_up gauge\nhealthagg_up %d\n",
            ha_agg_ready(v->agg));
    appendf(&b,
            "# HELP healthagg_enforced 0 in report-only mode (\"enforce\": false): /readyz "
            "stays 200 whatever the checks say.\n# TYPE healthagg_enforced gauge\n"
            "healthagg_enforced %d\n",
            v->enforce);
    appendf(&b, "# HELP healthagg_aggregate_state Aggregate state, one series per state.\n"
                "# TYPE healthagg_aggregate_state gauge\n");
    for (int a = HA_AGG_STARTING; a <= HA_AGG_DRAINING; a++)
        appendf(&b, "healthagg_aggregate_state{state=\"%s\"} %d\n",
                ha_agg_status_name((ha_agg_status)a), (int)v->agg == a);
    if (v->n_groups) { /* at most 64 lines */
        appendf(&b, "# HELP healthagg_group_up 1 when the group's checks are pass or warn (what "
                    "/readyz?group=G answers 200 for, report-only aside).\n"
                    "# TYPE healthagg_group_up gauge\n");
        for (size_t g = 0; g < v->n_groups; g++)
            appendf(&b, "healthagg_group_up{group=\"%s\"} %d\n", v->groups[g].name,
                    ha_agg_ready(v->group_states[g].agg));
    }
    for (int f = 0; f < F_COUNT; f++) {
        fam_at[f] = b.len;
        appendf(&b, "# HELP %s %s\n# TYPE %s %s\n", families[f].name, families[f].help,
                families[f].name, families[f].type);
    }
    fam_at[F_COUNT] = b.len; /* the rest: task-wide series after the per-check families */
    appendf(&b,
            "# HELP healthagg_scheduler_lag_max_seconds Largest delay of a probe behind its "
            "planned start.\n# TYPE healthagg_scheduler_lag_max_seconds gauge\n"
            "healthagg_scheduler_lag_max_seconds %.6f\n",
            (double)v->sched_lag->max_us / 1e6);
    histogram(&b, "healthagg_scheduler_lag_seconds",
              "How late probes start behind their planned time.", v->sched_lag);
    if (v->loop_turn) {
        appendf(&b,
                "# HELP healthagg_loop_turn_max_seconds Most CPU time one event loop turn "
                "used (work between two waits for events) since start.\n"
                "# TYPE healthagg_loop_turn_max_seconds gauge\n"
                "healthagg_loop_turn_max_seconds %.6f\n",
                (double)v->loop_turn->max_us / 1e6);
        histogram(&b, "healthagg_loop_turn_seconds",
                  "Event loop turns by the CPU time of their work between two waits for events.",
                  v->loop_turn);
    }
    appendf(&b,
            "# HELP healthagg_probes_skipped_total Probes not started because the previous "
            "one was still closing.\n# TYPE healthagg_probes_skipped_total counter\n"
            "healthagg_probes_skipped_total %llu\n",
            (unsigned long long)v->probes_skipped);
    appendf(&b,
            "# HELP healthagg_start_time_seconds Unix time the sidecar started.\n"
            "# TYPE healthagg_start_time_seconds gauge\nhealthagg_start_time_seconds %.3f\n",
            (double)v->start_wall_ms / 1e3);
    if (b.failed)
        return NULL;
    size_t body_len = b.len;
    for (size_t i = 0; i < v->n; i++)
        body_len += m->frag[i].off[F_COUNT];
    ha_response *r =
        ha_response_alloc(200, "text/plain; version=0.0.4; charset=utf-8", NULL, body_len);
    if (!r)
        return NULL;
    char *p = r->data + r->head_len;
    p += put_str(p, m->page, fam_at[0]);
    for (int f = 0; f < F_COUNT; f++) {
        p += put_str(p, m->page + fam_at[f], fam_at[f + 1] - fam_at[f]);
        for (size_t i = 0; i < v->n; i++) {
            const fragment *fr = &m->frag[i];
            p += put_str(p, fr->text + fr->off[f], fr->off[f + 1] - fr->off[f]);
        }
    }
    put_str(p, m->page + fam_at[F_COUNT], b.len - fam_at[F_COUNT]);
    return r;
}

ha_response *ha_render_metrics(const ha_view *v)
{
    ha_metrics_cache *m = ha_metrics_cache_new(v->cfg, v->n);
    if (!m)
        return NULL;
    ha_response *r = ha_render_metrics_cached(m, v);
    ha_metrics_cache_free(m);
    return r;
}
