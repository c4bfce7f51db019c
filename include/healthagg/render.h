/* render.h - turns the cached state into HTTP responses: plain text, health+json, Prometheus.
 *
 * A rendered response is one contiguous, reference-counted buffer holding the status line,
 * headers and body. The server writes it as is (HEAD writes only the first head_len bytes;
 * the last response on a connection uses the stored "Connection: close" head instead, and an
 * HTTP/1.0 client kept alive the "Connection: keep-alive" one),
 * and holds a reference while a write is in flight so a re-render can't pull it away. */
#ifndef HEALTHAGG_RENDER_H
#define HEALTHAGG_RENDER_H

#include "healthagg/aggregate.h"
#include "healthagg/histogram.h"
#include "healthagg/history.h"

#include <stddef.h>
#include <stdint.h>

typedef struct ha_response {
    unsigned refs;
    int status;
    size_t len;            /* whole response */
    size_t head_len;       /* status line + headers, what HEAD sends */
    size_t close_head_len; /* the same head plus "Connection: close", stored at data + len */
    size_t ka_head_len;    /* plus "Connection: keep-alive" instead (for HTTP/1.0 clients) */
    char data[];           /* head, body, close head, keep-alive head */
} ha_response;

/* What the renderers read; filled by the owner of the state. */
typedef struct ha_view {
    const ha_check_config *cfg;
    const ha_check_state *st;
    size_t n;
    const size_t *idx;      /* a group's view: the n checks are cfg[idx[0..n)]; NULL: all */
    const char *group;      /* that group's name (shown in /health), or NULL */
    const ha_group *groups; /* every group and its verdict, for /metrics */
    const ha_group_state *group_states;
    size_t n_groups;
    ha_agg_status agg;
    const char *summary;
    uint64_t start_wall_ms;
    const ha_histogram *sched_lag;
    const ha_histogram *loop_turn; /* NULL: not measured (no such series) */
    uint64_t probes_skipped;
    bool enforce;                     /* false: report-only (/readyz stays 200) */
    const struct ha_history *history; /* flight recorder, for /health?history=1 */
    bool with_history;
} ha_view;

/* A response with `body` (may be NULL for none); extra_headers is "Name: v\r\n"... or NULL. */
ha_response *ha_response_new(int status, const char *content_type, const char *extra_headers,
                             const char *body, size_t body_len);
/* The same with the body left for the caller to write: body_len bytes at data + head_len. */
ha_response *ha_response_alloc(int status, const char *content_type, const char *extra_headers,
                               size_t body_len);
void ha_response_ref(ha_response *r);
void ha_response_unref(ha_response *r);

ha_response *ha_render_readyz(const ha_view *v);
ha_response *ha_render_health(const ha_view *v); /* with v->with_history: each check's ring */
ha_response *ha_render_metrics(const ha_view *v);

/* metrics.c: /metrics with each check's lines kept between renders, re-rendered only for
 * checks with a new result since the last render. Built for one configuration (cfg, n). */
typedef struct ha_metrics_cache ha_metrics_cache;
ha_metrics_cache *ha_metrics_cache_new(const ha_check_config *cfg, size_t n);
void ha_metrics_cache_free(ha_metrics_cache *m);
ha_response *ha_render_metrics_cached(ha_metrics_cache *m, const ha_view *v);

#endif
