/* test_secrets.c - header name/value rules, secret maps (with ${VAR} values) and redaction. */
#include "healthagg/secrets.h"
#include "unit.h"

#include <stdlib.h>

static void field_rules(void)
{
    char why[256];
    CHECK(ha_http_field_name_ok("Authorization", why, sizeof(why)));
    CHECK(ha_http_field_name_ok("X-Api_Key.v2!#$%&'*+^`|~", why, sizeof(why)));
    CHECK(!ha_http_field_name_ok("", why, sizeof(why)));
    CHECK(!ha_http_field_name_ok("Bad Name", why, sizeof(why)));
    CHECK_STR_CONTAINS(why, "\" \" cannot appear in a header name");
    CHECK(!ha_http_field_name_ok("X:Y", why, sizeof(why)));
    CHECK(!ha_http_field_name_ok("X\r\nInjected", why, sizeof(why)));
    CHECK(!ha_http_field_name_ok("caf\xC3\xA9", why, sizeof(why)));

    CHECK(ha_http_field_value_ok("Bearer abc", why, sizeof(why)));
    CHECK(ha_http_field_value_ok("tab\there \xC3\xA9", why, sizeof(why)));
    CHECK(ha_http_field_value_ok("", why, sizeof(why)));
    CHECK(!ha_http_field_value_ok("a\r\nX-Evil: 1", why, sizeof(why)));
    CHECK_STR_CONTAINS(why, "control character (CR) at byte 1");
    CHECK(!ha_http_field_value_ok("a\nb", why, sizeof(why)));
    CHECK_STR_CONTAINS(why, "(LF) at byte 1");
    CHECK(!ha_http_field_value_ok("a\x7f", why, sizeof(why)));
}

static void maps(void)
{
    char err[256];
    ha_secret_map m;
    setenv("HA_T_TOKEN", "s3cr3t-value", 1);
    setenv("HA_T_CRLF", "x\r\nX-Evil: 1", 1);

    cJSON *o = cJSON_Parse("{\"Authorization\": \"Bearer ${HA_T_TOKEN}\", \"X-Flag\": \"1\"}");
    CHECK(ha_secret_map_parse(o, "checks[0].headers", NULL, &m, err, sizeof(err)) == 0);
    CHECK(m.n == 2);
    CHECK(strcmp(m.items[0].name, "Authorization") == 0);
    CHECK(strcmp(m.items[0].value, "Bearer s3cr3t-value") == 0);
    CHECK(ha_secret_map_get(&m, "authorization") == &m.items[0]);
    CHECK(ha_secret_map_get(&m, "x-flag") == &m.items[1]);
    CHECK(ha_secret_map_get(&m, "Host") == NULL);
    /* the whole value and the variable's value are scrubbed (longest first); "1" is too short */
    CHECK(m.n_scrub == 2);
    CHECK(strcmp(m.scrub[0], "Bearer s3cr3t-value") == 0);

    cJSON *d = cJSON_CreateObject();
    ha_secret_map_describe(&m, "headers", d);
    char *text = cJSON_PrintUnformatted(d);
    CHECK(text && strcmp(text, "{\"headers\":{\"Authorization\":\"<redacted>\",\"X-Flag\":"
                               "\"<redacted>\"}}") == 0);
    CHECK(text && !strstr(text, "s3cr3t"));
    free(text);
    cJSON_Delete(d);

    char reason[64] = "$.auth is \"Bearer s3cr3t-value\", want \"x\"";
    CHECK(ha_secret_scrub(&m, reason, sizeof(reason)) == 1);
    CHECK(strcmp(reason, "$.auth is \"<redacted>\", want \"x\"") == 0);
    char r2[64] = "token=s3cr3t-value;again=s3cr3t-value";
    CHECK(ha_secret_scrub(&m, r2, sizeof(r2)) == 2);
    CHECK(strcmp(r2, "token=<redacted>;again=<redacted>") == 0);
    char bare[64] = "$.token is \"s3cr3t-value\"";
    CHECK(ha_secret_scrub(&m, bare, sizeof(bare)) == 1);
    CHECK(strcmp(bare, "$.token is \"<redacted>\"") == 0);
    char r3[64] = "HTTP 201";
    CHECK(ha_secret_scrub(&m, r3, sizeof(r3)) == 0);
    CHECK(strcmp(r3, "HTTP 201") == 0);
    /* the marker is longer than a 4-byte secret: what follows is cut to fit the buffer */
    ha_secret_map_free(&m);
    cJSON_Delete(o);

    setenv("HA_T_SHORT", "abcd", 1);
    o = cJSON_Parse("{\"K\": \"${HA_T_SHORT}\"}");
    CHECK(ha_secret_map_parse(o, "h", NULL, &m, err, sizeof(err)) == 0);
    char r4[16] = "xxabcdyyyyyyyyy"; /* 15 bytes, full buffer */
    CHECK(ha_secret_scrub(&m, r4, sizeof(r4)) == 1);
    CHECK(strcmp(r4, "xx<redacted>yyy") == 0);
    char r5[8] = "xxxabcd";
    CHECK(ha_secret_scrub(&m, r5, sizeof(r5)) == 1);
    CHECK(strcmp(r5, "xxx") == 0); /* the marker does not fit: cut before the secret */
    ha_secret_map_free(&m);
    cJSON_Delete(o);

    struct {
        const char *json, *want;
    } bad[] = {
        {"[]", "h: expected an object"},
        {"{\"Bad Name\": \"v\"}", "h.Bad Name: \" \" cannot appear"},
        {"{\"A\": \"1\", \"a\": \"2\"}", "h.a: given twice"},
        {"{\"A\": 5}", "h.A: expected a string, got a number"},
        {"{\"A\": \"${HA_T_UNSET}\"}", "h.A: ${HA_T_UNSET} is not set"},
        {"{\"A\": \"${HA_T_CRLF}\"}", "h.A: the value has a control character (CR) at byte 1"},
        {"{\"A\": \"x ${HA_T_TOKEN\"}", "h.A: \"${\" without a closing \"}\""},
    };
    unsetenv("HA_T_UNSET");
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        o = cJSON_Parse(bad[i].json);
        CHECK(o != NULL);
        err[0] = '\0';
        CHECK(ha_secret_map_parse(o, "h", NULL, &m, err, sizeof(err)) == -1);
        CHECK_STR_CONTAINS(err, bad[i].want);
        CHECK(!strstr(err, "X-Evil")); /* the value is never in the message */
        CHECK(m.n == 0 && m.items == NULL);
        cJSON_Delete(o);
    }
    o = cJSON_Parse("{\"A\": \"${HA_T_CRLF}\"}");
    ha_secret_map_parse(o, "h", NULL, &m, err, sizeof(err));
    CHECK_STR_CONTAINS(err, "(after ${VAR} expansion)");
    cJSON_Delete(o);
}

int main(void)
{
    field_rules();
    maps();
    return unit_report("secrets");
}
