/* test_history.c - the flight recorder's rings: order, wrap-around, size 0, long reasons. */
#include "healthagg/history.h"
#include "unit.h"

#include <stdio.h>

static ha_result result(bool ok, const char *reason, uint64_t latency_us)
{
    ha_result r;
    memset(&r, 0, sizeof(r));
    r.ok = ok;
    r.latency_us = latency_us;
    snprintf(r.reason, sizeof(r.reason), "%s", reason);
    return r;
}

static void wraps_and_keeps_order(void)
{
    ha_history h;
    CHECK(ha_history_init(&h, 2, 3) == 0);
    char reason[32];
    for (int i = 0; i < 5; i++) {
        snprintf(reason, sizeof(reason), "r%d", i);
        ha_result r = result(i % 2 == 0, reason, 1000u * (unsigned)i);
        ha_history_record(&h, 1, 1795000000000ULL + (uint64_t)i, &r,
                          i == 4 ? HA_CHECK_FAIL : HA_CHECK_PASS);
    }
    ha_result e = result(false, "local", 0);
    e.inconclusive = true;
    cJSON *a0 = ha_history_json(&h, 0);
    CHECK(a0 && cJSON_GetArraySize(a0) == 0); /* check 0 untouched */
    cJSON_Delete(a0);
    cJSON *a = ha_history_json(&h, 1);
    CHECK(a && cJSON_GetArraySize(a) == 3);
    const char *want[] = {"r2", "r3", "r4"};
    for (int i = 0; a && i < 3; i++) {
        cJSON *it = cJSON_GetArrayItem(a, i);
        CHECK(strcmp(cJSON_GetObjectItem(it, "reason")->valuestring, want[i]) == 0);
        CHECK(strcmp(cJSON_GetObjectItem(it, "result")->valuestring, i == 1 ? "fail" : "pass") ==
              0);
        CHECK(cJSON_GetObjectItem(it, "latency_ms")->valuedouble == 2.0 + i);
    }
    CHECK(strcmp(cJSON_GetObjectItem(cJSON_GetArrayItem(a, 2), "state")->valuestring, "fail") == 0);
    cJSON_Delete(a);
    ha_history_record(&h, 1, 1795000000010ULL, &e, HA_CHECK_FAIL);
    a = ha_history_json(&h, 1);
    cJSON *last = cJSON_GetArrayItem(a, 2);
    CHECK(last && strcmp(cJSON_GetObjectItem(last, "result")->valuestring, "error") == 0);
    CHECK(strcmp(cJSON_GetObjectItem(cJSON_GetArrayItem(a, 0), "reason")->valuestring, "r3") == 0);
    cJSON_Delete(a);
    ha_history_free(&h);
}

static void size_zero_and_bounds(void)
{
    ha_history h;
    CHECK(ha_history_init(&h, 4, 0) == 0);
    ha_result r = result(true, "HTTP 200", 5);
    ha_history_record(&h, 0, 1, &r, HA_CHECK_PASS); /* ignored, no memory behind it */
    ha_history_record(&h, 9, 1, &r, HA_CHECK_PASS);
    cJSON *a = ha_history_json(&h, 0);
    CHECK(a && cJSON_GetArraySize(a) == 0);
    cJSON_Delete(a);
    ha_history_free(&h);

    CHECK(ha_history_init(&h, 1, 1) == 0);
    ha_result big = result(false, "", 0);
    memset(big.reason, 'x', sizeof(big.reason) - 1);
    big.reason[sizeof(big.reason) - 1] = '\0';
    ha_history_record(&h, 0, 1, &big, HA_CHECK_FAIL);
    ha_history_record(&h, 5, 1, &big, HA_CHECK_FAIL); /* out of range: ignored */
    a = ha_history_json(&h, 0);
    CHECK(a && cJSON_GetArraySize(a) == 1);
    CHECK(strlen(cJSON_GetObjectItem(cJSON_GetArrayItem(a, 0), "reason")->valuestring) ==
          sizeof(big.reason) - 1);
    cJSON_Delete(a);
    ha_history_free(&h);
}

int main(void)
{
    wraps_and_keeps_order();
    size_zero_and_bounds();
    return unit_report("unit.history");
}
