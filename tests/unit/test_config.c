/* test_config.c - config loading: sources, precedence, and every bad input naming its field. */
#include "healthagg/check_type.h"
#include "healthagg/config.h"
#include "unit.h"

#include <stdlib.h>
#include <unistd.h>

static int load_inline(const char *json, ha_config *c, char *err, size_t errlen)
{
    ha_config_inputs in;
    memset(&in, 0, sizeof(in));
    in.env_inline = json;
    return ha_config_load(&in, c, err, errlen);
}

static void expect_error(const char *json, const char *needle, const char *needle2)
{
    ha_config c;
    char err[HA_ERR_MAX * 2] = "";
    int rc = load_inline(json, &c, err, sizeof(err));
    CHECK(rc == -1);
    if (rc == 0) {
        fprintf(stderr, "  accepted: %s\n", json);
        ha_config_free(&c);
        return;
    }
    CHECK_STR_CONTAINS(err, needle);
    if (needle2)
        CHECK_STR_CONTAINS(err, needle2);
}

/* The type's effective settings, as the startup log shows them. */
static const char *described(const ha_check_config *k)
{
    static char buf[1024];
    cJSON *o = cJSON_CreateObject();
    ha_check_describe(k, o);
    char *t = cJSON_PrintUnformatted(o);
    snprintf(buf, sizeof(buf), "%s", t ? t : "");
    cJSON_free(t);
    cJSON_Delete(o);
    return buf;
}

static void good_config(void)
{
    const char *json =
        "{\"listen\": \"0.0.0.0:9000\", \"shutdown_grace\": \"3s\","
        " \"defaults\": {\"interval\": \"10s\", \"timeout\": \"1s\", \"failure_threshold\": 2,"
        "  \"success_threshold\": 2, \"start_period\": \"60s\"},"
        " \"server\": {\"max_connections\": 10},"
        " \"checks\": ["
        "  {\"name\": \"app\", \"url\": \"http://127.0.0.1:8080/healthz\", \"expect_status\": "
        "[\"200-299\", 301]},"
        "  {\"name\": \"db\", \"url\": \"tcp://10.0.0.12:5432\", \"critical\": false, "
        "\"interval\": \"30s\"},"
        "  {\"url\": \"http://127.0.0.1:8081/\", \"method\": \"HEAD\"},"
        "  {\"name\": \"body\", \"url\": \"http://127.0.0.1:8082/\", \"expect_body\": \"ok\", "
        "\"max_response_bytes\": 1024}"
        " ]}";
    ha_config c;
    char err[HA_ERR_MAX * 2] = "";
    int rc = load_inline(json, &c, err, sizeof(err));
    CHECK(rc == 0);
    if (rc != 0) {
        fprintf(stderr, "  error: %s\n", err);
        return;
    }
    CHECK(strcmp(c.listen_host, "0.0.0.0") == 0 && c.listen_port == 9000);
    CHECK(c.grace_ms == 3000);
    CHECK(c.limits.max_connections == 10 && c.limits.max_header_bytes == 8192);
    CHECK(c.n_checks == 4);
    CHECK(c.checks[0].interval_ms == 10000 && c.checks[0].timeout_ms == 1000);
    CHECK(c.checks[0].failure_threshold == 2 && c.checks[0].success_threshold == 2);
    CHECK(c.checks[0].start_period_ms == 60000 && c.checks[0].critical);
    /* Type keys are private to the type: read them back the way the startup log does. */
    CHECK_STR_CONTAINS(described(&c.checks[0]), "\"expect_status\":[\"200-299\",\"301\"]");
    CHECK_STR_CONTAINS(described(&c.checks[0]), "\"type\":\"http\"");
    CHECK(!c.checks[1].critical && c.checks[1].interval_ms == 30000);
    CHECK_STR_CONTAINS(described(&c.checks[1]), "\"type\":\"tcp\"");
    CHECK(strcmp(c.checks[2].name, "127.0.0.1:8081") == 0);
    CHECK_STR_CONTAINS(described(&c.checks[2]), "\"method\":\"HEAD\"");
    CHECK_STR_CONTAINS(described(&c.checks[3]), "\"expect_body\":\"ok\"");
    CHECK_STR_CONTAINS(described(&c.checks[3]), "\"max_response_bytes\":1024");
    ha_config_free(&c);
}

static void builtin_defaults_and_flags(void)
{
    ha_config_inputs in;
    memset(&in, 0, sizeof(in));
    in.flag_checks[in.n_flag_checks++] = "app=http://127.0.0.1:8080/healthz?x=1";
    in.flag_checks[in.n_flag_checks++] = "tcp://127.0.0.1:5432";
    ha_config c;
    char err[HA_ERR_MAX * 2] = "";
    CHECK(ha_config_load(&in, &c, err, sizeof(err)) == 0);
    CHECK(strcmp(c.listen_host, "127.0.0.1") == 0 && c.listen_port == 8099);
    CHECK(c.n_checks == 2);
    CHECK(strcmp(c.checks[0].name, "app") == 0 &&
          strcmp(c.checks[0].url.path, "/healthz?x=1") == 0);
    CHECK(strcmp(c.checks[1].name, "127.0.0.1:5432") == 0);
    CHECK(c.checks[0].interval_ms == 5000 && c.checks[0].timeout_ms == 2000);
    CHECK(c.checks[0].failure_threshold == 3 && c.checks[0].success_threshold == 1);
    CHECK(c.checks[0].start_period_ms == 0 && c.checks[0].critical);
    CHECK_STR_CONTAINS(described(&c.checks[0]), "\"expect_status\":[\"200-399\"]");
    ha_config_free(&c);

    /* Flags win over the config, for every check, including per-check values. */
    memset(&in, 0, sizeof(in));
    in.env_inline = "{\"listen\": \"127.0.0.1:1000\", \"checks\": [{\"name\": \"a\", \"url\": "
                    "\"http://127.0.0.1:1/\", \"interval\": \"30s\", \"timeout\": \"10s\"}]}";
    in.env_listen = "127.0.0.1:2000";
    in.flag_interval = "1s";
    in.flag_timeout = "500ms";
    in.flag_failure_threshold = "7";
    in.flag_success_threshold = "4";
    in.flag_start_period = "2m";
    in.flag_grace = "250ms";
    in.flag_checks[in.n_flag_checks++] = "b=http://127.0.0.1:2/";
    CHECK(ha_config_load(&in, &c, err, sizeof(err)) == 0);
    CHECK(c.listen_port == 2000); /* env beats the config file */
    CHECK(c.n_checks == 2);
    for (size_t i = 0; i < c.n_checks; i++) {
        CHECK(c.checks[i].interval_ms == 1000 && c.checks[i].timeout_ms == 500);
        CHECK(c.checks[i].failure_threshold == 7 && c.checks[i].success_threshold == 4);
        CHECK(c.checks[i].start_period_ms == 120000);
    }
    CHECK(c.grace_ms == 250);
    ha_config_free(&c);
    in.flag_listen = "127.0.0.1:3000";
    CHECK(ha_config_load(&in, &c, err, sizeof(err)) == 0 && c.listen_port == 3000);
    ha_config_free(&c);
}

static void file_sources(void)
{
    char path[] = "/tmp/healthagg-unit-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    const char *json = "{\"checks\": [{\"name\": \"f\", \"url\": \"tcp://127.0.0.1:1\"}]}";
    CHECK(write(fd, json, strlen(json)) == (ssize_t)strlen(json));
    close(fd);
    ha_config_inputs in;
    memset(&in, 0, sizeof(in));
    in.env_file = path;
    ha_config c;
    char err[HA_ERR_MAX * 2] = "";
    CHECK(ha_config_load(&in, &c, err, sizeof(err)) == 0 && c.n_checks == 1);
    ha_config_free(&c);
    /* --config wins over both environment variables. */
    in.config_path = path;
    in.env_inline = "not json";
    CHECK(ha_config_load(&in, &c, err, sizeof(err)) == 0 && strcmp(c.checks[0].name, "f") == 0);
    ha_config_free(&c);
    in.config_path = NULL;
    CHECK(ha_config_load(&in, &c, err, sizeof(err)) == -1);
    CHECK_STR_CONTAINS(err, "both set");
    unlink(path);
    memset(&in, 0, sizeof(in));
    in.config_path = path;
    CHECK(ha_config_load(&in, &c, err, sizeof(err)) == -1);
    CHECK_STR_CONTAINS(err, "--config: cannot open");

    /* probe's view of the listen address */
    char host[64];
    uint16_t port;
    memset(&in, 0, sizeof(in));
    CHECK(ha_config_listen_only(&in, host, sizeof(host), &port, err, sizeof(err)) == 0 &&
          port == 8099);
    in.env_inline = "{\"listen\": \"0.0.0.0:9100\", \"checks\": []}";
    CHECK(ha_config_listen_only(&in, host, sizeof(host), &port, err, sizeof(err)) == 0 &&
          port == 9100 && strcmp(host, "0.0.0.0") == 0);
    in.env_listen = "127.0.0.1:9200";
    CHECK(ha_config_listen_only(&in, host, sizeof(host), &port, err, sizeof(err)) == 0 &&
          port == 9200);
}

static void bad_configs(void)
{
    expect_error("{\"checks\": [{\"name\": \"a\", \"url\": \"tcp://h:1\", \"intervall\": \"5s\"}]}",
                 "checks[0].intervall: unknown key", "interval");
    expect_error("{\"listne\": \"x\"}", "listne: unknown key", NULL);
    expect_error("{\"defaults\": {\"name\": \"x\"}, \"checks\": []}", "defaults.name: unknown key",
                 NULL);
    expect_error("{\"server\": {\"max_conns\": 1}}", "server.max_conns: unknown key", NULL);
    expect_error("{\"checks\": [{\"url\": \"tcp://h:1\", \"url\": \"tcp://h:2\"}]}",
                 "checks[0].url: key appears twice", NULL);
    expect_error("{\"checks\": [{\"url\": \"tcp://h:1\", \"failure_threshold\": \"3\"}]}",
                 "checks[0].failure_threshold: expected a whole number", "got a string");
    expect_error("{\"checks\": [{\"url\": \"tcp://h:1\", \"failure_threshold\": 2.5}]}",
                 "checks[0].failure_threshold", NULL);
    expect_error("{\"checks\": [{\"url\": \"tcp://h:1\", \"failure_threshold\": 0}]}",
                 "checks[0].failure_threshold", "1-100");
    expect_error("{\"checks\": [{\"url\": \"tcp://h:1\", \"critical\": \"yes\"}]}",
                 "checks[0].critical: expected true or false", NULL);
    expect_error("{\"checks\": [{\"url\": \"tcp://h:1\", \"interval\": 5}]}",
                 "checks[0].interval: expected a duration string", NULL);
    expect_error("{\"checks\": [{\"url\": \"tcp://h:1\", \"interval\": \"5\"}]}",
                 "checks[0].interval", "no unit");
    expect_error("{\"defaults\": {\"timeout\": \"fast\"}, \"checks\": []}", "defaults.timeout",
                 "invalid duration");
    expect_error("{\"checks\": [{\"url\": \"htp://h:1\"}]}", "checks[0].url", "unsupported scheme");
    expect_error("{\"checks\": [{\"name\": \"x\"}]}", "checks[0].url: missing", NULL);
    expect_error(
        "{\"checks\": [{\"url\": \"tcp://h:1\", \"timeout\": \"5s\", \"interval\": \"5s\"}]}",
        "checks[0].timeout: 5s must be shorter than the interval 5s (check \"h:1\")", NULL);
    expect_error("{\"checks\": []}", "checks: no checks configured", "--check");
    expect_error("{}", "checks: no checks configured", NULL);
    expect_error("{\"checks\": {}}", "checks: expected an array", NULL);
    expect_error("{\"checks\": [\"http://h/\"]}", "checks[0]: expected an object", NULL);
    expect_error("{\"checks\": [{\"name\": \"a b\", \"url\": \"tcp://h:1\"}]}", "checks[0].name",
                 "letters");
    expect_error("{\"checks\": [{\"name\": \"a\", \"url\": \"tcp://h:1\"}, {\"name\": \"a\", "
                 "\"url\": \"tcp://h:2\"}]}",
                 "checks[1].name: \"a\" is used twice", NULL);
    expect_error("{\"checks\": [{\"url\": \"http://h:1\", \"expect_status\": [\"2xx\", \"700\"]}]}",
                 "checks[0].expect_status[1]", NULL);
    expect_error("{\"checks\": [{\"url\": \"tcp://h:1\", \"expect_body\": \"ok\"}]}",
                 "checks[0].expect_body: not a key of tcp checks", "valid keys");
    expect_error("{\"checks\": [{\"url\": \"http://h:1\", \"max_age\": \"5s\"}]}",
                 "checks[0].max_age: not a key of http checks", "expect_status");
    expect_error("{\"checks\": [{\"url\": \"tcp://h\"}]}", "checks[0].url", "needs a port");
    expect_error("{\"checks\": [{\"url\": \"tcp://h:1/x\"}]}", "checks[0].url", "no path");
    expect_error("{\"checks\": [{\"url\": \"gopher://h:1/\"}]}", "checks[0].url",
                 "supported: http");
    expect_error("{\"defaults\": {\"max_agee\": \"1s\"}, \"checks\": []}",
                 "defaults.max_agee: unknown key", NULL);
    expect_error("{\"defaults\": {\"expect_status\": [700]}, \"checks\": [{\"url\": "
                 "\"http://h:1\"}]}",
                 "defaults.expect_status[0]", NULL);
    expect_error("{\"checks\": [{\"url\": \"http://h:1\", \"method\": \"HEAD\", \"expect_body\": "
                 "\"x\"}]}",
                 "checks[0].expect_body: a HEAD response has no body", NULL);
    expect_error("{\"checks\": [{\"url\": \"http://h:1/\", \"method\": \"POST\"}]}",
                 "checks[0].method", "GET");
    expect_error("{\"listen\": \"8099\", \"checks\": []}", "listen:", "port");
    expect_error("{\"server\": {\"request_timeout\": \"0\"}}", "server.request_timeout", NULL);
    expect_error("{\"checks\": [", "invalid JSON near line 1", NULL);
    expect_error("{\n\"checks\": [\n  {\"url\": \"tcp://h:1\",}\n]}", "invalid JSON near line 3",
                 NULL);
    expect_error("[]", "must be a JSON object", NULL);
    expect_error("{\"shutdown_grace\": true}", "shutdown_grace: expected a duration", NULL);

    /* Flags: bad values name the flag. */
    struct {
        const char *field;
        const char *value;
    } flags[] = {{"--interval", "5x"},         {"--timeout", "soon"},
                 {"--start-period", "-1s"},    {"--failure-threshold", "0"},
                 {"--success-threshold", "x"}, {"--grace", "1"},
                 {"--listen", "nowhere"},      {"HEALTHAGG_LISTEN", "1.2.3.4"}};
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
        ha_config_inputs in;
        memset(&in, 0, sizeof(in));
        in.flag_checks[in.n_flag_checks++] = "tcp://127.0.0.1:1";
        const char *f = flags[i].field;
        const char *v = flags[i].value;
        if (!strcmp(f, "--interval"))
            in.flag_interval = v;
        else if (!strcmp(f, "--timeout"))
            in.flag_timeout = v;
        else if (!strcmp(f, "--start-period"))
            in.flag_start_period = v;
        else if (!strcmp(f, "--failure-threshold"))
            in.flag_failure_threshold = v;
        else if (!strcmp(f, "--success-threshold"))
            in.flag_success_threshold = v;
        else if (!strcmp(f, "--grace"))
            in.flag_grace = v;
        else if (!strcmp(f, "--listen"))
            in.flag_listen = v;
        else
            in.env_listen = v;
        ha_config c;
        char err[HA_ERR_MAX * 2] = "";
        CHECK(ha_config_load(&in, &c, err, sizeof(err)) == -1);
        CHECK_STR_CONTAINS(err, f);
    }
    ha_config_inputs in;
    memset(&in, 0, sizeof(in));
    in.flag_checks[in.n_flag_checks++] = "http://h:1/";
    in.flag_checks[in.n_flag_checks++] = "http://h:1/other";
    ha_config c;
    char err[HA_ERR_MAX * 2] = "";
    CHECK(ha_config_load(&in, &c, err, sizeof(err)) == -1);
    CHECK_STR_CONTAINS(err, "used twice");
    in.n_flag_checks = 1;
    in.flag_checks[0] = "=http://h:1/";
    CHECK(ha_config_load(&in, &c, err, sizeof(err)) == -1);
    CHECK_STR_CONTAINS(err, "--check");
    in.flag_checks[0] = "app=ftp://h/";
    CHECK(ha_config_load(&in, &c, err, sizeof(err)) == -1);
    CHECK_STR_CONTAINS(err, "--check app=ftp://h/");
    in.flag_checks[0] = "tcp://h:1";
    in.flag_timeout = "5s";
    CHECK(ha_config_load(&in, &c, err, sizeof(err)) == -1);
    CHECK_STR_CONTAINS(err, "must be shorter than the interval");
}

/* Issue 8 item 6: text after the document, empty names, NUL characters, and messages that
 * used to mislead. */
static void strictness(void)
{
    expect_error("{\"checks\": [{\"url\": \"tcp://h:1\"}]}},\"listen\":\"0.0.0.0:9\"}",
                 "unexpected text after the JSON document at line 1 column 35", "\"},\\\"listen");
    expect_error("{\"checks\": [{\"url\": \"tcp://h:1\"}]}\n{\"listen\": \"0.0.0.0:9\"}",
                 "unexpected text after the JSON document at line 2 column 1", NULL);
    expect_error("{\"checks\": [{\"url\": \"tcp://h:1\"}]} // no comments in JSON",
                 "unexpected text after the JSON document", "//");
    expect_error("{\"checks\": [{\"name\": \"\", \"url\": \"tcp://h:1\"}]}",
                 "checks[0].name: empty", "leave \"name\" out");
    expect_error("{\"checks\": [{\"url\": \"http://h:1/\", \"expect_body\": \"a\\u0000b\"}]}",
                 "\\u0000", "line 1 column 53");
    expect_error("{\"checks\": [{\"url\": \"http://h:1/\", \"expect_body\": \"caf\xC3\"}]}",
                 "not valid UTF-8 at line 1 column 55", NULL);
    expect_error("{\"checks\": [{\"url\": \"tcp://h:1\", \"failure_threshold\": 0}]}",
                 "checks[0].failure_threshold: 0 must be at least 1", NULL);
    expect_error("{\"checks\": [{\"url\": \"tcp://h:1\", \"success_threshold\": 101}]}",
                 "checks[0].success_threshold: 101 must be at most 100", NULL);
    expect_error("{\"checks\": [{\"url\": \"http://h:1/\", \"max_response_bytes\": 16777217}]}",
                 "checks[0].max_response_bytes: 16777217 must be at most 16777216", NULL);
    expect_error("{\"checks\": [{\"url\": \"tcp://h:1\", \"failure_threshold\": 2.5}]}",
                 "checks[0].failure_threshold: 2.5 is not a whole number", NULL);
    expect_error("{\"listen\": \":8099\", \"checks\": [{\"url\": \"tcp://h:1\"}]}",
                 "listen: host missing: use 127.0.0.1:8099 or 0.0.0.0:8099", NULL);
    expect_error("{\"checks\": [{\"url\": \"http://user:secret@h:1/\"}]}", "checks[0].url",
                 "\"headers\"");
    /* Whitespace after the document is fine. */
    ha_config c;
    char err[HA_ERR_MAX * 2] = "";
    CHECK(load_inline("{\"checks\": [{\"url\": \"tcp://h:1\"}]}\n \t\r\n", &c, err, sizeof(err)) ==
          0);
    if (err[0])
        fprintf(stderr, "  error: %s\n", err);
    ha_config_free(&c);

    /* A directory given as the config file. */
    ha_config_inputs in;
    memset(&in, 0, sizeof(in));
    in.config_path = "/tmp";
    CHECK(ha_config_load(&in, &c, err, sizeof(err)) == -1);
    CHECK_STR_CONTAINS(err, "--config: /tmp is a directory");

    /* A flag that conflicts with a default names the flag and the default. */
    memset(&in, 0, sizeof(in));
    in.flag_checks[in.n_flag_checks++] = "app=tcp://127.0.0.1:1";
    in.flag_interval = "1s";
    CHECK(ha_config_load(&in, &c, err, sizeof(err)) == -1);
    CHECK_STR_CONTAINS(err, "--interval 1s");
    CHECK_STR_CONTAINS(err, "timeout 2s (the built-in default)");
    CHECK(strstr(err, "checks[0].timeout:") == NULL);
    in.env_inline =
        "{\"defaults\": {\"interval\": \"1s\", \"timeout\": \"500ms\"}, \"checks\": []}";
    in.flag_interval = NULL;
    in.flag_timeout = "3s";
    CHECK(ha_config_load(&in, &c, err, sizeof(err)) == -1);
    CHECK_STR_CONTAINS(err, "--timeout 3s");
    CHECK_STR_CONTAINS(err, "interval 1s (defaults.interval)");
    in.flag_interval = "1s";
    CHECK(ha_config_load(&in, &c, err, sizeof(err)) == -1);
    CHECK_STR_CONTAINS(err, "--timeout 3s must be shorter than --interval 1s");

    /* An IPv6 literal without a name gets a valid default name (item 4). */
    memset(&in, 0, sizeof(in));
    in.flag_checks[in.n_flag_checks++] = "http://[::1]:8080/";
    int rc = ha_config_load(&in, &c, err, sizeof(err));
    CHECK(rc == 0);
    if (rc == 0) {
        CHECK(strcmp(c.checks[0].name, "[::1]:8080") == 0);
        ha_config_free(&c);
    } else {
        fprintf(stderr, "  error: %s\n", err);
    }
}

static void operator_keys(void)
{
    ha_config c;
    char err[HA_ERR_MAX * 2] = "";
    int rc =
        load_inline("{\"checks\": [{\"url\": \"http://127.0.0.1:1/\"}]}", &c, err, sizeof(err));
    CHECK(rc == 0);
    if (rc == 0) {
        CHECK(c.enforce && c.history_size == 20 && c.still_unhealthy_every_ms == 60000);
        CHECK(!c.public_details && c.checks[0].start_interval_ms == 0 && !c.checks[0].container[0]);
        ha_config_free(&c);
    }
    rc = load_inline("{\"enforce\": false, \"history_size\": 0, \"still_unhealthy_interval\": "
                     "\"0\", \"server\": {\"public_details\": true},"
                     " \"defaults\": {\"start_interval\": \"250ms\"},"
                     " \"checks\": [{\"url\": \"http://127.0.0.1:1/\", \"container\": \"app\"},"
                     "  {\"url\": \"tcp://127.0.0.1:2\", \"start_interval\": \"0\"}]}",
                     &c, err, sizeof(err));
    CHECK(rc == 0);
    if (rc == 0) {
        CHECK(!c.enforce && c.history_size == 0 && c.still_unhealthy_every_ms == 0);
        CHECK(c.public_details && c.checks[0].start_interval_ms == 250);
        CHECK(strcmp(c.checks[0].container, "app") == 0 && c.checks[1].start_interval_ms == 0);
        ha_config_free(&c);
    }
    expect_error("{\"checks\": [{\"url\": \"http://h/\", \"start_interval\": \"99ms\"}]}",
                 "checks[0].start_interval: 99ms must be between 100ms and the interval 5s", NULL);
    expect_error("{\"defaults\": {\"container\": \"app\"}, \"checks\": []}",
                 "defaults.container: unknown key", NULL);
    expect_error("{\"history_size\": -1, \"checks\": []}", "history_size:", "0-1000");
    expect_error("{\"server\": {\"public_details\": \"yes\"}, \"checks\": []}",
                 "server.public_details: expected true or false", NULL);
}

static void tcp_keys(void)
{
    ha_config c;
    char err[HA_ERR_MAX * 2] = "";
    const char *json =
        "{\"defaults\": {\"max_response_bytes\": 4096}, \"checks\": ["
        " {\"name\": \"redis\", \"url\": \"tcp://127.0.0.1:6379\", \"send\": \"PING\\r\\n\", "
        "\"expect\": \"+PONG\"},"
        " {\"name\": \"pg\", \"url\": \"tcp://127.0.0.1:5432\", \"send_hex\": "
        "\"00 00 00 08 04 d2 16 2f\", \"expect\": [\"S\", \"N\"]},"
        " {\"name\": \"smtp\", \"url\": \"tcp://127.0.0.1:25\", \"expect_hex\": \"323230\", "
        "\"max_response_bytes\": 3},"
        " {\"name\": \"plain\", \"url\": \"tcp://127.0.0.1:1\"}]}";
    CHECK(load_inline(json, &c, err, sizeof(err)) == 0);
    if (c.n_checks == 4) {
        CHECK_STR_CONTAINS(described(&c.checks[0]), "\"send\":\"PING\\r\\n\"");
        CHECK_STR_CONTAINS(described(&c.checks[0]), "\"expect\":[\"+PONG\"]");
        CHECK_STR_CONTAINS(described(&c.checks[0]), "\"max_response_bytes\":4096");
        CHECK_STR_CONTAINS(described(&c.checks[1]), "\"send_hex\":\"00 00 00 08 04 d2 16 2f\"");
        CHECK_STR_CONTAINS(described(&c.checks[1]), "\"expect\":[\"S\",\"N\"]");
        CHECK_STR_CONTAINS(described(&c.checks[2]), "\"expect_hex\":[\"32 32 30\"]");
        CHECK(strcmp(described(&c.checks[3]), "{\"type\":\"tcp\"}") == 0);
        ha_config_free(&c);
    } else {
        fprintf(stderr, "  %s\n", err);
    }
    expect_error("{\"checks\": [{\"url\": \"tcp://127.0.0.1:1\", \"send_hex\": \"0g\"}]}",
                 "checks[0].send_hex: odd hex digit at offset 0", NULL);
    expect_error("{\"checks\": [{\"url\": \"tcp://127.0.0.1:1\", \"send_hex\": \"zz\"}]}",
                 "checks[0].send_hex: 'z' at offset 0 is not a hex digit", NULL);
    expect_error("{\"checks\": [{\"url\": \"tcp://127.0.0.1:1\", \"send\": \"a\", "
                 "\"send_hex\": \"00\"}]}",
                 "checks[0].send_hex: give either send or send_hex, not both", NULL);
    expect_error("{\"checks\": [{\"url\": \"tcp://127.0.0.1:1\", \"expect\": []}]}",
                 "checks[0].expect: give one value or a list of 1 to 8", NULL);
    expect_error("{\"checks\": [{\"url\": \"tcp://127.0.0.1:1\", \"expect\": [\"a\", 5]}]}",
                 "checks[0].expect[1]: expected a string, got a number", NULL);
    expect_error("{\"checks\": [{\"url\": \"tcp://127.0.0.1:1\", \"expect\": \"\"}]}",
                 "checks[0].expect: empty", NULL);
    expect_error("{\"checks\": [{\"url\": \"tcp://127.0.0.1:1\", \"expect\": \"+PONG\", "
                 "\"max_response_bytes\": 2}]}",
                 "checks[0].expect: 5 bytes, more than max_response_bytes (2)", NULL);
    expect_error("{\"checks\": [{\"url\": \"tcp://127.0.0.1:1\", \"max_age\": \"5s\"}]}",
                 "checks[0].max_age: not a key of tcp checks", "send, send_hex, expect");
    expect_error("{\"checks\": [{\"url\": \"http://127.0.0.1:1/\", \"send\": \"x\"}]}",
                 "checks[0].send: not a key of http checks", NULL);
}

int main(void)
{
    tcp_keys();
    strictness();
    good_config();
    operator_keys();
    builtin_defaults_and_flags();
    file_sources();
    bad_configs();
    return unit_report("unit.config");
}
