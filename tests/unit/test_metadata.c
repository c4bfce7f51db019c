/* test_metadata.c - the task metadata document and response parsers, and the description of a
 * container that goes into a failing check's reason. */
#include "healthagg/metadata.h"
#include "unit.h"

#include <stdio.h>

static void document(void)
{
    const char *doc =
        "{\"Cluster\": \"demo\", \"TaskARN\": \"arn:aws:ecs:eu-west-1:1:task/demo/abc\","
        " \"Family\": \"app\", \"Revision\": \"7\", \"LaunchType\": \"FARGATE\","
        " \"AvailabilityZone\": \"eu-west-1b\", \"Unknown\": {\"x\": [1, 2]},"
        " \"Containers\": [{\"Name\": \"healthagg\", \"KnownStatus\": \"RUNNING\"},"
        "  {\"Name\": \"app\", \"KnownStatus\": \"STOPPED\", \"ExitCode\": 137},"
        "  \"not an object\", {\"KnownStatus\": \"RUNNING\"},"
        "  {\"Name\": \"odd\", \"KnownStatus\": \"r\\u00e9nning\"}]}";
    ha_task_info t;
    char err[128] = "";
    CHECK(ha_metadata_parse_task(doc, strlen(doc), &t, err, sizeof(err)) == 0);
    CHECK(strcmp(t.task_arn, "arn:aws:ecs:eu-west-1:1:task/demo/abc") == 0);
    CHECK(strcmp(t.family, "app") == 0 && strcmp(t.revision, "7") == 0);
    CHECK(strcmp(t.launch_type, "FARGATE") == 0 && strcmp(t.availability_zone, "eu-west-1b") == 0);
    CHECK(t.n_containers == 3); /* the non-object and the nameless entry are skipped */
    char d[128];
    ha_metadata_describe(&t, "app", d, sizeof(d));
    CHECK(strcmp(d, "container app STOPPED, exit code 137") == 0);
    ha_metadata_describe(&t, "healthagg", d, sizeof(d));
    CHECK(strcmp(d, "container healthagg RUNNING") == 0);
    ha_metadata_describe(&t, "db", d, sizeof(d));
    CHECK(strcmp(d, "container db not in the task metadata") == 0);
    ha_metadata_describe(&t, "odd", d, sizeof(d)); /* only A-Z and _ reach a reason */
    CHECK(strcmp(d, "container odd ????????") == 0);

    const char *num = "{\"TaskARN\": \"a\", \"Revision\": 31}";
    CHECK(ha_metadata_parse_task(num, strlen(num), &t, err, sizeof(err)) == 0);
    CHECK(strcmp(t.revision, "31") == 0 && t.n_containers == 0);
    CHECK(ha_metadata_parse_task("[]", 2, &t, err, sizeof(err)) == -1);
    CHECK_STR_CONTAINS(err, "not a JSON object");
    CHECK(ha_metadata_parse_task("{\"Family\": \"x\"}", 15, &t, err, sizeof(err)) == -1);
    CHECK_STR_CONTAINS(err, "no TaskARN");
    CHECK(ha_metadata_parse_task("{", 1, &t, err, sizeof(err)) == -1);
}

static void response(void)
{
    const char *ok = "HTTP/1.1 200 OK\r\nContent-Length: 15\r\n\r\n{\"TaskARN\":\"a\"}";
    ha_meta_response r;
    ha_meta_response_init(&r);
    for (size_t i = 0; i < strlen(ok); i++) /* byte by byte */
        CHECK(ha_meta_response_feed(&r, ok + i, 1) == 0);
    CHECK(r.complete && r.status == 200 && r.len == 15 &&
          strcmp(r.body, "{\"TaskARN\":\"a\"}") == 0);
    ha_meta_response_free(&r);

    ha_meta_response_init(&r);
    const char *eof = "HTTP/1.1 503 Busy\r\nConnection: close\r\n\r\nlater";
    CHECK(ha_meta_response_feed(&r, eof, strlen(eof)) == 0 && !r.complete);
    CHECK(ha_meta_response_eof(&r) == 0 && r.complete && r.status == 503 && r.len == 5);
    ha_meta_response_free(&r);

    ha_meta_response_init(&r);
    const char *cut = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort";
    CHECK(ha_meta_response_feed(&r, cut, strlen(cut)) == 0);
    CHECK(ha_meta_response_eof(&r) == -1);
    CHECK_STR_CONTAINS(r.error, "");
    CHECK(r.error[0] != '\0');
    ha_meta_response_free(&r);

    ha_meta_response_init(&r);
    CHECK(ha_meta_response_feed(&r, "SSH-2.0-OpenSSH\r\n", 17) == -1);
    CHECK_STR_CONTAINS(r.error, "invalid HTTP response");
    ha_meta_response_free(&r);

    ha_meta_response_init(&r);
    char head[96];
    snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n",
             HA_META_MAX_BODY + 1);
    CHECK(ha_meta_response_feed(&r, head, strlen(head)) == 0);
    static char big[HA_META_MAX_BODY + 1];
    memset(big, 'x', sizeof(big));
    CHECK(ha_meta_response_feed(&r, big, sizeof(big)) == -1);
    CHECK_STR_CONTAINS(r.error, "larger than");
    ha_meta_response_free(&r);
}

int main(void)
{
    document();
    response();
    return unit_report("unit.metadata");
}
