/* test_json_cond.c - expect_json: the path parser, the condition list parser and the reasons of
 * the evaluator. */
#include "healthagg/json_cond.h"
#include "unit.h"

#include <stdlib.h>

static void path_ok(const char *text, size_t n)
{
    ha_json_path p;
    char err[256] = "";
    int rc = ha_json_path_parse(text, &p, err, sizeof(err));
    CHECK(rc == 0);
    if (rc != 0) {
        fprintf(stderr, "  path %s: %s\n", text, err);
        return;
    }
    CHECK(p.n == n);
    CHECK(strcmp(p.text, text) == 0);
    ha_json_path_free(&p);
}

static void path_bad(const char *text, const char *want)
{
    ha_json_path p;
    char err[256] = "";
    CHECK(ha_json_path_parse(text, &p, err, sizeof(err)) == -1);
    CHECK_STR_CONTAINS(err, want);
    CHECK(p.n == 0 && p.text == NULL);
}

static void paths(void)
{
    path_ok("$", 0);
    path_ok("$.status", 1);
    path_ok("$.a.b[0].c", 4);
    path_ok("$[0]", 1);
    path_ok("$.items[-1]", 2);
    path_ok("$[\"db.primary\"].up", 2);
    path_ok("$['a b']['c\\'d']", 2);
    path_ok("$.caf\xC3\xA9", 1);
    path_ok("$.a-b_c:d", 1);

    path_bad("", "a path starts with $");
    path_bad("status", "a path starts with $");
    path_bad("$.", "a name must follow \".\" at byte 2");
    path_bad("$..a", "a name must follow \".\" at byte 2");
    path_bad("$.a[", "an index is [N]");
    path_bad("$.a[x]", "an index is [N]");
    path_bad("$.a[1", "an index is [N]");
    path_bad("$.a[-0]", "the last element is [-1]");
    path_bad("$.a[99999999999]", "an index is [N]");
    path_bad("$[\"abc]", "is not closed by \"]");
    path_bad("$a", "unexpected \"a\" at byte 1");
    path_bad("$.a b", "unexpected \" b\" at byte 3");

    char long_path[600] = "$";
    for (int i = 0; i < 40; i++)
        strcat(long_path, ".a");
    path_bad(long_path, "more than 32 steps");

    /* lookups */
    cJSON *doc =
        cJSON_Parse("{\"a\": {\"b\": [10, {\"c\": \"x\"}]}, \"db.primary\": {\"up\": true}}");
    ha_json_path p;
    char err[128];
    CHECK(ha_json_path_parse("$.a.b[1].c", &p, err, sizeof(err)) == 0);
    const cJSON *v = ha_json_path_get(&p, doc);
    CHECK(v && cJSON_IsString(v) && strcmp(v->valuestring, "x") == 0);
    ha_json_path_free(&p);
    CHECK(ha_json_path_parse("$.a.b[-2]", &p, err, sizeof(err)) == 0);
    v = ha_json_path_get(&p, doc);
    CHECK(v && cJSON_IsNumber(v) && v->valuedouble == 10);
    ha_json_path_free(&p);
    CHECK(ha_json_path_parse("$.a.b[-3]", &p, err, sizeof(err)) == 0);
    CHECK(ha_json_path_get(&p, doc) == NULL);
    ha_json_path_free(&p);
    CHECK(ha_json_path_parse("$.a.b[2]", &p, err, sizeof(err)) == 0);
    CHECK(ha_json_path_get(&p, doc) == NULL);
    ha_json_path_free(&p);
    CHECK(ha_json_path_parse("$.a[0]", &p, err, sizeof(err)) == 0); /* index into an object */
    CHECK(ha_json_path_get(&p, doc) == NULL);
    ha_json_path_free(&p);
    CHECK(ha_json_path_parse("$.a.b.c", &p, err, sizeof(err)) == 0); /* name into an array */
    CHECK(ha_json_path_get(&p, doc) == NULL);
    ha_json_path_free(&p);
    CHECK(ha_json_path_parse("$[\"db.primary\"].up", &p, err, sizeof(err)) == 0);
    v = ha_json_path_get(&p, doc);
    CHECK(v && cJSON_IsTrue(v));
    ha_json_path_free(&p);
    CHECK(ha_json_path_parse("$", &p, err, sizeof(err)) == 0);
    CHECK(ha_json_path_get(&p, doc) == doc);
    ha_json_path_free(&p);
    cJSON_Delete(doc);
}

static bool parse_conds(const char *json, ha_json_conds *c, char *err, size_t errlen)
{
    cJSON *list = cJSON_Parse(json);
    CHECK(list != NULL);
    int rc = ha_json_conds_parse(list, "checks[0].expect_json", c, err, errlen);
    cJSON_Delete(list);
    return rc == 0;
}

static void conds_bad(const char *json, const char *want)
{
    ha_json_conds c;
    char err[256] = "";
    CHECK(!parse_conds(json, &c, err, sizeof(err)));
    CHECK_STR_CONTAINS(err, want);
    CHECK(c.n == 0 && c.items == NULL);
}

static void condition_lists(void)
{
    conds_bad("{\"path\": \"$.a\", \"equals\": 1}", "checks[0].expect_json: expected a list");
    conds_bad("[]", "checks[0].expect_json: give 1 to 32 conditions");
    conds_bad("[\"$.a\"]", "checks[0].expect_json[0]: expected an object");
    conds_bad("[{\"equals\": 1}]", "checks[0].expect_json[0].path: missing");
    conds_bad("[{\"path\": 1, \"equals\": 1}]", "checks[0].expect_json[0].path: expected a string");
    conds_bad("[{\"path\": \"$.a\"}]", "checks[0].expect_json[0]: no condition");
    conds_bad("[{\"path\": \"$.a\", \"equal\": 1}]", "checks[0].expect_json[0].equal: unknown key");
    conds_bad("[{\"path\": \"$.a\", \"equals\": 1, \"lt\": 2}]",
              "checks[0].expect_json[0]: both \"equals\" and \"lt\"");
    conds_bad("[{\"path\": \"$.a\", \"equals\": 1}, {\"path\": \"$.b\", \"lt\": \"5\"}]",
              "checks[0].expect_json[1].lt: expected a number, got a string");
    conds_bad("[{\"path\": \"$.a\", \"exists\": 1}]",
              "checks[0].expect_json[0].exists: expected true or false");
    conds_bad("[{\"path\": \"a.b\", \"exists\": true}]",
              "checks[0].expect_json[0].path: a path starts with $");
    conds_bad("[{\"path\": \"$.a\", \"path\": \"$.b\", \"exists\": true}]",
              "checks[0].expect_json[0].path: key appears twice");

    ha_json_conds c;
    char err[256];
    CHECK(parse_conds("[{\"path\": \"$.status\", \"equals\": \"UP\"}, {\"path\": \"$.n\", \"ge\": "
                      "2.5}, {\"path\": \"$.x\", \"exists\": false}, {\"path\": \"$.o\", "
                      "\"not_equals\": {\"a\": [1, null]}}]",
                      &c, err, sizeof(err)));
    CHECK(c.n == 4);
    cJSON *out = cJSON_CreateObject();
    ha_json_conds_describe(&c, "expect_json", out);
    char *text = cJSON_PrintUnformatted(out);
    CHECK(text && strcmp(text, "{\"expect_json\":[{\"path\":\"$.status\",\"equals\":\"UP\"},"
                               "{\"path\":\"$.n\",\"ge\":2.5},{\"path\":\"$.x\",\"exists\":false},"
                               "{\"path\":\"$.o\",\"not_equals\":{\"a\":[1,null]}}]}") == 0);
    free(text);
    cJSON_Delete(out);
    ha_json_conds_free(&c);
}

/* Evaluates one condition list against a body; want_reason NULL means it must pass. */
static void eval(const char *conds, const char *body, const char *want_reason)
{
    ha_json_conds c;
    char err[256], reason[192] = "";
    if (!parse_conds(conds, &c, err, sizeof(err))) {
        CHECK(!"conditions parse");
        fprintf(stderr, "  %s: %s\n", conds, err);
        return;
    }
    bool ok = ha_json_conds_eval(&c, body, strlen(body), false, 65536, reason, sizeof(reason));
    if (want_reason) {
        CHECK(!ok);
        unit_checks++;
        if (strcmp(reason, want_reason) != 0) {
            unit_failures++;
            fprintf(stderr, "eval %s on %s:\n  got  %s\n  want %s\n", conds, body, reason,
                    want_reason);
        }
    } else {
        CHECK(ok);
        if (!ok)
            fprintf(stderr, "eval %s on %s: %s\n", conds, body, reason);
    }
    ha_json_conds_free(&c);
}

static void evaluation(void)
{
    const char *body = "{\"status\": \"UP\", \"db\": {\"latency_ms\": 340, \"ok\": true}, "
                       "\"list\": [1, 2, 3], \"nothing\": null, \"ratio\": 0.25}";
    eval("[{\"path\": \"$.status\", \"equals\": \"UP\"}]", body, NULL);
    eval("[{\"path\": \"$.status\", \"equals\": \"DOWN\"}]", body,
         "$.status is \"UP\", want \"DOWN\"");
    eval("[{\"path\": \"$.status\", \"not_equals\": \"DOWN\"}]", body, NULL);
    eval("[{\"path\": \"$.status\", \"not_equals\": \"UP\"}]", body,
         "$.status is \"UP\", want anything but \"UP\"");
    eval("[{\"path\": \"$.db.latency_ms\", \"lt\": 100}]", body,
         "$.db.latency_ms is 340, want < 100");
    eval("[{\"path\": \"$.db.latency_ms\", \"le\": 340}]", body, NULL);
    eval("[{\"path\": \"$.db.latency_ms\", \"lt\": 340}]", body,
         "$.db.latency_ms is 340, want < 340");
    eval("[{\"path\": \"$.db.latency_ms\", \"gt\": 340}]", body,
         "$.db.latency_ms is 340, want > 340");
    eval("[{\"path\": \"$.db.latency_ms\", \"ge\": 340}]", body, NULL);
    eval("[{\"path\": \"$.ratio\", \"ge\": 0.3}]", body, "$.ratio is 0.25, want >= 0.3");
    eval("[{\"path\": \"$.status\", \"lt\": 3}]", body, "$.status is \"UP\", want a number < 3");
    eval("[{\"path\": \"$.db.ok\", \"equals\": true}]", body, NULL);
    eval("[{\"path\": \"$.db.ok\", \"equals\": \"true\"}]", body, "$.db.ok is true, want \"true\"");
    eval("[{\"path\": \"$.db.latency_ms\", \"equals\": 340.0}]", body, NULL);
    eval("[{\"path\": \"$.db.latency_ms\", \"equals\": \"340\"}]", body,
         "$.db.latency_ms is 340, want \"340\"");
    eval("[{\"path\": \"$.list\", \"equals\": [1, 2, 3]}]", body, NULL);
    eval("[{\"path\": \"$.list\", \"equals\": [1, 2]}]", body, "$.list is [1,2,3], want [1,2]");
    eval("[{\"path\": \"$.list[-1]\", \"equals\": 3}]", body, NULL);
    eval("[{\"path\": \"$.nothing\", \"equals\": null}]", body, NULL);
    eval("[{\"path\": \"$.nothing\", \"exists\": true}]", body, NULL); /* null exists */
    eval("[{\"path\": \"$.x\", \"exists\": true}]", body, "$.x does not exist");
    eval("[{\"path\": \"$.x\", \"exists\": false}]", body, NULL);
    eval("[{\"path\": \"$.status\", \"exists\": false}]", body,
         "$.status is \"UP\", want it absent");
    eval("[{\"path\": \"$.x.y\", \"equals\": \"UP\"}]", body, "$.x.y does not exist, want \"UP\"");
    eval("[{\"path\": \"$.x\", \"lt\": 5}]", body, "$.x does not exist, want < 5");
    eval("[{\"path\": \"$.x\", \"not_equals\": 5}]", body,
         "$.x does not exist, want anything but 5");
    /* the first failing condition gives the reason */
    eval("[{\"path\": \"$.status\", \"equals\": \"UP\"}, {\"path\": \"$.db.latency_ms\", \"lt\": "
         "100}, {\"path\": \"$.x\", \"exists\": true}]",
         body, "$.db.latency_ms is 340, want < 100");
    eval("[{\"path\": \"$\", \"equals\": [1]}]", "[1]", NULL);
    eval("[{\"path\": \"$\", \"equals\": 5}]", " 5 \r\n", NULL);

    /* bodies that are not JSON */
    eval("[{\"path\": \"$.a\", \"exists\": true}]", "", "body is not JSON: empty body");
    eval("[{\"path\": \"$.a\", \"exists\": true}]", "  \n", "body is not JSON: only whitespace");
    eval("[{\"path\": \"$.a\", \"exists\": true}]", "{\"a\": }",
         "body is not JSON: invalid at byte 6 of 7 (near \"}\")");
    eval("[{\"path\": \"$.a\", \"exists\": true}]", "<html>down</html>",
         "body is not JSON: invalid at byte 0 of 17 (near \"<html>down</html>\")");
    eval("[{\"path\": \"$.a\", \"exists\": true}]", "{\"a\": 1} {\"b\": 2}",
         "body is not JSON: text after the document at byte 9 of 17 (near \"{\\\"b\\\": 2}\")");

    /* a truncated body, and strings that need quoting */
    ha_json_conds c;
    char err[256], reason[192];
    CHECK(parse_conds("[{\"path\": \"$.a\", \"equals\": \"x\"}]", &c, err, sizeof(err)));
    CHECK(!ha_json_conds_eval(&c, "{\"a\": \"xx", 9, true, 9, reason, sizeof(reason)));
    CHECK_STR_CONTAINS(reason, "cut at max_response_bytes (9)");
    CHECK(!ha_json_conds_eval(&c, "{\"a\": \"line\\nbreak \\\"q\\\"\"}", 26, false, 100, reason,
                              sizeof(reason)));
    CHECK(strcmp(reason, "$.a is \"line\\nbreak \\\"q\\\"\", want \"x\"") == 0);
    /* a body that is not NUL-terminated is read only up to len */
    CHECK(ha_json_conds_eval(&c, "{\"a\": \"x\"}GARBAGE", 10, false, 100, reason, sizeof(reason)));
    /* long values are cut, and the reason stays within its buffer */
    char big[800] = "{\"a\": \"";
    for (int i = 0; i < 300; i++)
        strcat(big, "\xC3\xA9");
    strcat(big, "\"}");
    char small[40];
    CHECK(!ha_json_conds_eval(&c, big, strlen(big), false, 1000, small, sizeof(small)));
    CHECK(strlen(small) < sizeof(small));
    CHECK_STR_CONTAINS(small, "$.a is \"");
    ha_json_conds_free(&c);
}

int main(void)
{
    paths();
    condition_lists();
    evaluation();
    return unit_report("json_cond");
}
