/* context.h - the one context struct of `healthagg serve`: every piece of mutable state the
 * daemon has hangs off it, and each subsystem gets it passed in. Data flows one way:
 * config -> scheduler -> checks -> state -> aggregate -> cache -> server. */
#ifndef HEALTHAGG_CONTEXT_H
#define HEALTHAGG_CONTEXT_H

#include "healthagg/aggregate.h"
#include "healthagg/check.h"
#include "healthagg/config.h"
#include "healthagg/histogram.h"
#include "healthagg/history.h"
#include "healthagg/render.h"
#include "healthagg/server.h"

#include <uv.h>

typedef struct ha_context ha_context;

/* After a stall, answers say "stale" at least this long (and until every check has a fresh
 * result): requests that queued up during the stall are read in the first loop turns after
 * it, and must not race the first fresh probe result to a 200. */
#define HA_STALL_HOLD_MS 250

/* Scheduling of one check: its timer, its probe, and where its state lives. */
typedef struct ha_check_runtime {
    ha_context *ctx;
    size_t index; /* into config.checks and states */
    ha_probe probe;
    uv_timer_t timer;
    uint64_t planned_ms; /* loop time this check is due */
    bool fired_once;
    bool awaiting_fresh; /* its last result predates a stall of the scheduler */
    bool probe_ready;
    bool last_inconclusive;        /* log local probe errors once per episode, not per probe */
    uint64_t status_since_wall_ms; /* when the check entered its current state */
    uint64_t metadata_asked_ms;    /* loop time this check last asked for task metadata */
} ha_check_runtime;

/* Rendered responses; /readyz is rebuilt as soon as a batch of results changes it, /health
 * and /metrics are marked dirty and rebuilt by their next reader (see cache.c for why). */
/* One group's rendered responses: /readyz?group=G kept current like /readyz, /health?group=G
 * re-rendered by its next reader like /health. */
typedef struct ha_group_cache {
    ha_response *readyz, *health, *health_history;
    bool health_dirty, history_dirty;
} ha_group_cache;

typedef struct ha_cache {
    ha_response *livez_ok, *livez_stale, *readyz_stale;
    ha_response *unknown_group;      /* 404 naming the known groups (text, for /readyz) */
    ha_response *unknown_group_json; /* the same as health+json, for /health */
    ha_group_cache *groups;          /* parallel to config.groups */
    ha_response *readyz, *health, *metrics, *health_history;
    ha_response *not_found, *bad_method, *bad_request, *too_large, *has_body, *forbidden;
    ha_response *busy;               /* 503 for a connection beyond max_connections, then closed */
    ha_metrics_cache *metrics_parts; /* each check's /metrics lines, kept between renders */
    bool health_dirty, metrics_dirty, history_dirty;
} ha_cache;

struct ha_context {
    uv_loop_t loop;
    ha_config config;
    ha_check_state *states;   /* parallel to config.checks */
    ha_check_runtime *checks; /* parallel to config.checks */
    ha_resolver *resolver;    /* NULL unless some check names a host */

    ha_agg_status agg;
    ha_agg_tracker tracker; /* counters agg follows from, updated per result */
    char summary[HA_SUMMARY_MAX];
    ha_group_state *group_states; /* parallel to config.groups */
    uint64_t groups_dirty;        /* groups with a new result since their last refresh */
    bool draining;
    bool stopping;

    uv_prepare_t batch; /* runs once per loop turn, before it blocks, after results arrived */
    bool batch_pending;
    uint64_t last_eval_ms;   /* loop time the scheduler last fired a check */
    uint64_t stale_after_ms; /* 3x the largest interval */
    uint64_t stall_ms;       /* loop time a stall was last noticed (0: never) */
    size_t stall_pending;    /* checks still waiting for a result newer than that stall */
    uint64_t start_wall_ms;
    ha_histogram sched_lag; /* how late probes start, behind their planned time */
    ha_histogram loop_turn; /* CPU time per loop turn, between two waits for events (turns.c) */
    uv_prepare_t turn;      /* turns.c: runs once per loop turn, just before the wait */
    uint64_t turn_prev_ns;  /* the thread's CPU time at the previous turn's prepare (0: none) */
    uint64_t probes_skipped;
    uint64_t rng; /* xorshift state for jitter */

    ha_history history; /* flight recorder, fixed size from the start */
    bool probe_ok;      /* the verdict /readyz last gave probe (report.c logs its changes) */
    uint64_t unhealthy_since_wall_ms; /* 0 while ready or draining */
    uv_timer_t still_unhealthy;       /* report.c: the once-a-minute summary */
    struct ha_metadata *metadata;     /* ECS task metadata client; NULL when not on ECS */
    struct ha_task_info *task;        /* the task, as fetched at startup; NULL if unknown */
    char task_error[256];             /* why the startup fetch failed */
    bool metadata_error_logged;

    ha_cache cache;
    ha_server server;
    uv_signal_t sigterm, sigint;
    uv_signal_t sighup, sigusr1, sigusr2; /* logged with the current state; never fatal */
    uv_timer_t grace;
};

/* scheduler.c */
/* Allocates state and probes; nothing fires until ha_scheduler_arm(). */
int ha_scheduler_start(ha_context *ctx);
/* Plans every first probe from the current time and arms the timers: called right before the
 * loop runs, so start-up work (rendering, logging a large config) doesn't count as lag. */
int ha_scheduler_arm(ha_context *ctx);
void ha_scheduler_stop(ha_context *ctx);
void ha_scheduler_free(ha_context *ctx);
/* Recomputes the aggregate now (also used when draining starts). */
void ha_scheduler_refresh(ha_context *ctx);

/* cache.c */
int ha_cache_init(ha_context *ctx);
void ha_cache_free(ha_context *ctx);
/* Installs a new /readyz and marks the rest dirty. */
void ha_cache_results_changed(ha_context *ctx, bool readyz_changed);
bool ha_cache_stale(const ha_context *ctx);
ha_response *ha_cache_livez(ha_context *ctx);
ha_response *ha_cache_readyz(ha_context *ctx);
ha_response *ha_cache_health(ha_context *ctx);
ha_response *ha_cache_metrics(ha_context *ctx);
ha_response *ha_cache_health_history(ha_context *ctx);

/* turns.c: measures each loop turn's work into ctx->loop_turn. */
int ha_turns_start(ha_context *ctx);
void ha_turns_stop(ha_context *ctx);

/* groups.c: each group's verdict, recomputed for the groups that had results in a batch. */
int ha_groups_init(ha_context *ctx); /* after the scheduler: every group starting */
/* Recomputes the dirty groups (every group while draining), logs a `group` line when one's
 * verdict changes, and hands changed /readyz?group= answers to the cache. */
void ha_groups_refresh(ha_context *ctx);
void ha_groups_free(ha_context *ctx);

/* cache.c, per group */
void ha_cache_group_changed(ha_context *ctx, size_t g, bool readyz_changed);
ha_response *ha_cache_group_readyz(ha_context *ctx, size_t g);
ha_response *ha_cache_group_health(ha_context *ctx, size_t g, bool history);

/* report.c: what serve tells the log about the verdict, beyond single transitions. */
int ha_report_init(ha_context *ctx);
/* After the aggregate was recomputed: health_check on a change of probe's verdict, and the
 * still_unhealthy timer started or stopped. */
void ha_report_verdict(ha_context *ctx);
/* A check changed state (from -> its current status): a `history` line on a turn to fail. */
void ha_report_transition(ha_context *ctx, size_t i, ha_check_status from);
/* SIGTERM/SIGINT: one `history` line per check. */
void ha_report_signal(ha_context *ctx, const char *signal_name);
void ha_report_close(ha_context *ctx);

/* enrich.c: ECS task metadata (ECS_CONTAINER_METADATA_URI_V4). */
void ha_enrich_start(ha_context *ctx);                                /* before the loop runs */
void ha_enrich_startup_fields(const ha_context *ctx, cJSON *startup); /* "task" in startup */
void ha_enrich_result(ha_context *ctx, size_t i, ha_result *r); /* a result, before applying */
void ha_enrich_close(ha_context *ctx);
void ha_enrich_free(ha_context *ctx);

#endif
