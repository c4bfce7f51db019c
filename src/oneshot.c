/* oneshot.c - `healthagg check URL...`: run each target's check once, concurrently, with the
 * same probe engine the daemon uses, print a line per target, exit 0 iff all passed.
 * It is the curl replacement for a shell-less image: HEALTHCHECK CMD ["/healthagg","check",
 * "http://127.0.0.1:8080/healthz"] needs nothing else in the image. Exit codes are 0 or 1
 * only, since Docker reserves 2. */
#include "healthagg/check.h"
#include "healthagg/commands.h"
#include "healthagg/quote.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

typedef struct oneshot {
    ha_check_config cfg;
    ha_probe probe;
    bool inited;
    bool done;
    ha_result result;
    size_t *remaining; /* probes still running; the loop stops at 0 */
} oneshot;

static void on_done(ha_probe *p, const ha_result *r)
{
    oneshot *o = p->data;
    o->done = true;
    o->result = *r;
    if (--*o->remaining == 0)
        uv_stop(p->loop); /* don't wait for a lookup that outlived its attempt */
}

/* Runs the prepared probes of `all` (those with `inited`) to completion and prints a line per
 * entry, labelled by labels[i]. Returns 0 iff every entry passed. */
static int run_all(uv_loop_t *loop, ha_resolver *resolver, oneshot *all, size_t n, size_t remaining,
                   const char *const *labels, FILE *out)
{
    int rc = 0;
    for (size_t i = 0; i < n; i++)
        if (all[i].inited)
            ha_probe_start(&all[i].probe);
    if (remaining > 0)
        uv_run(loop, UV_RUN_DEFAULT); /* stops once every probe reported */
    for (size_t i = 0; i < n; i++) {
        oneshot *o = &all[i];
        if (o->inited)
            ha_probe_close(&o->probe);
    }
    ha_resolver_close(resolver); /* ends a lookup still in flight */
    uv_run(loop, UV_RUN_DEFAULT);
    for (size_t i = 0; i < n; i++) {
        oneshot *o = &all[i];
        if (o->inited)
            ha_probe_free(&o->probe);
        if (!o->done || !o->result.ok)
            rc = 1;
        char shown[HA_URL_TEXT_MAX + HA_NAME_MAX]; /* may hold any bytes: print them safely */
        ha_printable(shown, sizeof(shown), labels[i], strlen(labels[i]));
        fprintf(out, "%s %s: %s", o->result.ok ? "pass" : "fail", shown,
                o->done ? o->result.reason : "no result");
        if (o->inited && o->done)
            fprintf(out, " (%.1f ms)", (double)o->result.latency_us / 1000.0);
        fputc('\n', out);
    }
    fflush(out);
    return rc;
}

/* Prepares one probe for c; on failure the entry is done with the reason. */
static void prepare(uv_loop_t *loop, ha_resolver **resolver, oneshot *o, const ha_check_config *c,
                    size_t *remaining)
{
    char err[HA_ERR_MAX];
    o->remaining = remaining;
    ha_addr_list lit;
    if (!*resolver && c->row->transport &&
        !ha_addr_literal(c->url.host, c->url.host_is_ipv6, 1, &lit) &&
        !(*resolver = ha_resolver_new(loop, err, sizeof(err)))) {
        o->done = true;
        snprintf(o->result.reason, sizeof(o->result.reason), "%.190s", err);
        return;
    }
    int e = ha_probe_init(&o->probe, loop, *resolver, c, on_done, o);
    if (e != 0) {
        o->done = true;
        snprintf(o->result.reason, sizeof(o->result.reason), "%s", uv_strerror(e));
        return;
    }
    o->inited = true;
    (*remaining)++;
}

int ha_cmd_check_config(const ha_config *cfg, FILE *out)
{
    signal(SIGPIPE, SIG_IGN);
    uv_loop_t loop;
    if (uv_loop_init(&loop) != 0) {
        fprintf(out, "fail: cannot start an event loop\n");
        return 1;
    }
    size_t n = cfg->n_checks;
    oneshot *all = calloc(n, sizeof(*all));
    char **labels = calloc(n, sizeof(*labels));
    int rc = 1;
    if (!all || !labels) {
        fprintf(out, "fail: out of memory\n");
        goto out;
    }
    size_t remaining = 0;
    ha_resolver *resolver = NULL;
    for (size_t i = 0; i < n; i++) {
        const ha_check_config *c = &cfg->checks[i];
        size_t l = strlen(c->name) + strlen(c->url_text) + 2;
        if (!(labels[i] = malloc(l))) {
            fprintf(out, "fail: out of memory\n");
            goto out;
        }
        snprintf(labels[i], l, "%s %s", c->name, c->url_text);
        prepare(&loop, &resolver, &all[i], c, &remaining);
    }
    rc = run_all(&loop, resolver, all, n, remaining, (const char *const *)labels, out);
out:
    for (size_t i = 0; labels && i < n; i++)
        free(labels[i]);
    free(labels);
    free(all);
    uv_loop_close(&loop);
    return rc;
}

int ha_cmd_check(const char *const *urls, size_t n, uint64_t timeout_ms, const cJSON *defaults,
                 FILE *out)
{
    /* A target that closes while we write (an HTTP/1 server answering an HTTP/2 preface) must
     * cost a reason ("write: broken pipe"), not the whole command. */
    signal(SIGPIPE, SIG_IGN);
    uv_loop_t loop;
    if (uv_loop_init(&loop) != 0) {
        fprintf(out, "fail: cannot start an event loop\n");
        return 1;
    }
    oneshot *all = calloc(n, sizeof(*all));
    if (!all) {
        fprintf(out, "fail: out of memory\n");
        uv_loop_close(&loop);
        return 1;
    }
    int rc = 0;
    size_t remaining = 0;
    ha_resolver *resolver = NULL;
    for (size_t i = 0; i < n; i++) {
        oneshot *o = &all[i];
        char err[HA_ERR_MAX];
        ha_check_config *c = &o->cfg;
        c->timeout_ms = timeout_ms;
        c->interval_ms = timeout_ms + 1;
        c->failure_threshold = c->success_threshold = 1;
        c->critical = true;
        o->remaining = &remaining;
        ha_key_source src = {defaults, NULL, urls[i], err, sizeof(err)};
        if (ha_check_parse_url(c, urls[i], err, sizeof(err)) != 0 ||
            ha_check_parse_keys(c, &src) != 0) {
            o->done = true;
            o->result.ok = false;
            /* Keys from flags arrive as "defaults": name the flag (--expect-status), not that. */
            if (strncmp(err, "defaults.", 9) == 0) {
                char flag[64];
                size_t k = strcspn(err + 9, ".[: ");
                snprintf(flag, sizeof(flag), "--%.*s", (int)(k < 60 ? k : 60), err + 9);
                for (char *q = flag + 2; *q; q++)
                    if (*q == '_')
                        *q = '-';
                snprintf(o->result.reason, sizeof(o->result.reason), "%.60s%.120s", flag,
                         err + 9 + k);
            } else {
                snprintf(o->result.reason, sizeof(o->result.reason), "%.190s", err);
            }
            continue;
        }
        prepare(&loop, &resolver, o, c, &remaining);
    }
    rc = run_all(&loop, resolver, all, n, remaining, urls, out);
    for (size_t i = 0; i < n; i++)
        ha_check_config_release(&all[i].cfg);
    free(all);
    uv_loop_close(&loop);
    return rc;
}
