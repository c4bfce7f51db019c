/* history.c - the flight recorder (see history.h). The trade-off: memory is reserved for
 * history_size full-length reasons per check up front (about 220 bytes a slot, 4.4 KiB per check
 * at the default 20) so that recording never allocates and a burst of failures can't grow the
 * process; a config with thousands of checks can lower history_size or set it to 0. */
#include "healthagg/history.h"

#include "healthagg/log.h"
#include "healthagg/timeutil.h"

#include <stdlib.h>
#include <string.h>

int ha_history_init(ha_history *h, size_t n_checks, unsigned size)
{
    memset(h, 0, sizeof(*h));
    h->n_checks = n_checks;
    if (size == 0 || n_checks == 0)
        return 0;
    h->entries = calloc(n_checks * size, sizeof(*h->entries));
    h->rings = calloc(n_checks, sizeof(*h->rings));
    if (!h->entries || !h->rings) {
        ha_history_free(h);
        return -1;
    }
    h->size = size;
    return 0;
}

void ha_history_free(ha_history *h)
{
    free(h->entries);
    free(h->rings);
    h->entries = NULL;
    h->rings = NULL;
    h->size = 0;
}

void ha_history_record(ha_history *h, size_t check, uint64_t wall_ms, const ha_result *r,
                       ha_check_status state_after)
{
    if (h->size == 0 || check >= h->n_checks)
        return;
    ha_history_ring *ring = &h->rings[check];
    ha_history_entry *e = &h->entries[check * h->size + ring->next];
    e->wall_ms = wall_ms;
    e->latency_us = r->latency_us;
    e->result = r->inconclusive ? HA_HIST_ERROR : r->ok ? HA_HIST_PASS : HA_HIST_FAIL;
    e->state = (uint8_t)state_after;
    size_t len = strnlen(r->reason, sizeof(e->reason) - 1);
    memcpy(e->reason, r->reason, len);
    e->reason[len] = '\0';
    ring->next = (ring->next + 1) % h->size;
    if (ring->count < h->size)
        ring->count++;
}

static const char *result_name(uint8_t r)
{
    switch (r) {
    case HA_HIST_PASS:
        return "pass";
    case HA_HIST_FAIL:
        return "fail";
    default:
        return "error";
    }
}

cJSON *ha_history_json(const ha_history *h, size_t check)
{
    cJSON *arr = cJSON_CreateArray();
    if (!arr || h->size == 0 || check >= h->n_checks)
        return arr;
    const ha_history_ring *ring = &h->rings[check];
    uint32_t first = (ring->next + h->size - ring->count) % h->size;
    for (uint32_t k = 0; k < ring->count; k++) {
        const ha_history_entry *e = &h->entries[check * h->size + (first + k) % h->size];
        char when[HA_RFC3339_MAX];
        ha_format_rfc3339(e->wall_ms, when, sizeof(when));
        cJSON *o = cJSON_CreateObject();
        if (!o || !cJSON_AddStringToObject(o, "time", when) ||
            !cJSON_AddStringToObject(o, "result", result_name(e->result)) ||
            !cJSON_AddStringToObject(o, "state", ha_check_status_name((ha_check_status)e->state)) ||
            !cJSON_AddNumberToObject(o, "latency_ms", (double)e->latency_us / 1000.0) ||
            !cJSON_AddStringToObject(o, "reason", e->reason)) {
            cJSON_Delete(o);
            cJSON_Delete(arr);
            return NULL;
        }
        cJSON_AddItemToArray(arr, o);
    }
    return arr;
}

void ha_history_log(const ha_history *h, const ha_check_config *c, size_t check, const char *why,
                    bool enforced)
{
    if (h->size == 0)
        return;
    cJSON *o = ha_log_begin("info", "history");
    if (o) {
        cJSON *arr = ha_history_json(h, check);
        if (!cJSON_AddStringToObject(o, "check", c->name) ||
            !cJSON_AddStringToObject(o, "trigger", why) ||
            !cJSON_AddBoolToObject(o, "enforced", enforced) || !arr) {
            cJSON_Delete(arr);
            cJSON_Delete(o);
            o = NULL;
        } else {
            cJSON_AddItemToObject(o, "results", arr);
        }
    }
    ha_log_emit(o);
}
