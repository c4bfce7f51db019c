/* groups.c - the verdict of each group (checks sharing a name in "groups"), for
 * /readyz?group=G, /health?group=G and `probe --group G`.
 *
 * A group is judged exactly like the task, over its members only (ha_aggregate_subset). The
 * verdicts are kept current the way /readyz is: a result marks the groups its check belongs
 * to (one OR of the check's bit mask), and once per batch only those groups are recomputed:
 * the verdict in O(its members), the summary over its membership bitmap; the cache re-renders a
 * group's /readyz only when its line or status changed. So a grouped request is served from a
 * prebuilt buffer like an ungrouped one, and a config without groups pays nothing. A `group` log
 * line says when a group's verdict changes: with the ECS health check on `probe --group live`, that
 * is the verdict ECS acts on. */
#include "healthagg/context.h"
#include "healthagg/log.h"

#include <stdlib.h>
#include <string.h>

static bool recompute(ha_context *ctx, size_t g)
{
    const ha_group *gr = &ctx->config.groups[g];
    ha_group_state *gs = &ctx->group_states[g];
    ha_agg_status before = gs->agg;
    ha_agg_status now = ha_aggregate_subset(ctx->config.checks, ctx->states, gr->members,
                                            gr->n_members, ctx->draining);
    char summary[HA_SUMMARY_MAX];
    ha_aggregate_summary_of(now, ctx->config.checks, ctx->states, ctx->config.n_checks,
                            gr->member_bits, summary, sizeof(summary));
    bool changed = now != before || strcmp(summary, gs->summary) != 0;
    gs->agg = now;
    if (changed)
        memcpy(gs->summary, summary, sizeof(summary));
    if (now != before) {
        cJSON *o =
            ha_log_begin(ha_agg_ready(now) || now == HA_AGG_DRAINING ? "info" : "warn", "group");
        if (o) {
            cJSON_AddStringToObject(o, "group", gr->name);
            cJSON_AddStringToObject(o, "from", ha_agg_status_name(before));
            cJSON_AddStringToObject(o, "to", ha_agg_status_name(now));
            cJSON_AddStringToObject(o, "reason", summary);
            cJSON_AddBoolToObject(o, "ready", ha_agg_ready(now));
            cJSON_AddBoolToObject(o, "enforced", ctx->config.enforce);
        }
        ha_log_emit(o);
    }
    return changed;
}

int ha_groups_init(ha_context *ctx)
{
    size_t n = ctx->config.n_groups;
    if (n == 0)
        return 0;
    if (!(ctx->group_states = calloc(n, sizeof(*ctx->group_states))))
        return -1;
    for (size_t g = 0; g < n; g++) {
        ha_group_state *gs = &ctx->group_states[g];
        const ha_group *gr = &ctx->config.groups[g];
        gs->agg = HA_AGG_STARTING;
        ha_aggregate_summary_of(gs->agg, ctx->config.checks, ctx->states, ctx->config.n_checks,
                                gr->member_bits, gs->summary, sizeof(gs->summary));
    }
    return 0;
}

void ha_groups_refresh(ha_context *ctx)
{
    uint64_t dirty = ctx->draining ? ~0ull : ctx->groups_dirty;
    ctx->groups_dirty = 0;
    for (size_t g = 0; dirty && g < ctx->config.n_groups; g++) {
        if (!(dirty & (1ull << g)))
            continue;
        ha_cache_group_changed(ctx, g, recompute(ctx, g));
    }
}

void ha_groups_free(ha_context *ctx)
{
    free(ctx->group_states);
    ctx->group_states = NULL;
}
