/* test_parse.c - durations, URLs, listen addresses, status ranges, whole numbers, hex bytes. */
#include "healthagg/parse.h"
#include "unit.h"

static void durations(void)
{
    uint64_t ms = 0;
    char err[HA_ERR_MAX];
    CHECK(ha_parse_duration("250ms", &ms, err, sizeof(err)) == 0 && ms == 250);
    CHECK(ha_parse_duration("5s", &ms, err, sizeof(err)) == 0 && ms == 5000);
    CHECK(ha_parse_duration("2m", &ms, err, sizeof(err)) == 0 && ms == 120000);
    CHECK(ha_parse_duration("1h", &ms, err, sizeof(err)) == 0 && ms == 3600000);
    CHECK(ha_parse_duration("0", &ms, err, sizeof(err)) == 0 && ms == 0);
    CHECK(ha_parse_duration("24h", &ms, err, sizeof(err)) == 0);
    const char *bad[] = {
        "", "5", "5x", "s", "-1s", "1.5s", "5 s", "25h", "99999999999999999999s", "5sec", "ms"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        CHECK(ha_parse_duration(bad[i], &ms, err, sizeof(err)) == -1);
        CHECK(err[0] != '\0');
    }
    ha_parse_duration("5", &ms, err, sizeof(err));
    CHECK_STR_CONTAINS(err, "no unit");
    ha_parse_duration("5x", &ms, err, sizeof(err));
    CHECK_STR_CONTAINS(err, "250ms, 5s, 2m");
    char buf[32];
    ha_format_duration(2000, buf, sizeof(buf));
    CHECK(strcmp(buf, "2s") == 0);
    ha_format_duration(250, buf, sizeof(buf));
    CHECK(strcmp(buf, "250ms") == 0);
    ha_format_duration(120000, buf, sizeof(buf));
    CHECK(strcmp(buf, "2m") == 0);
}

static void urls(void)
{
    ha_url u;
    char err[HA_ERR_MAX];
    CHECK(ha_parse_url("http://127.0.0.1:8080/healthz", &u, err, sizeof(err)) == 0);
    CHECK(strcmp(u.scheme, "http") == 0 && u.port == 8080 && strcmp(u.host, "127.0.0.1") == 0 &&
          strcmp(u.path, "/healthz") == 0);
    CHECK(ha_parse_url("http://localhost", &u, err, sizeof(err)) == 0);
    CHECK(u.port == 0 && strcmp(u.path, "/") == 0 && !u.has_path); /* the row's default applies */
    CHECK(ha_parse_url("HTTP://app.internal:81/a?b=c#frag", &u, err, sizeof(err)) == 0);
    CHECK(strcmp(u.path, "/a?b=c") == 0 && strcmp(u.host, "app.internal") == 0);
    CHECK(ha_parse_url("http://[::1]:8080/x", &u, err, sizeof(err)) == 0);
    CHECK(u.host_is_ipv6 && strcmp(u.host, "::1") == 0 && u.port == 8080);
    CHECK(ha_parse_url("http://h:1?q", &u, err, sizeof(err)) == 0 && strcmp(u.path, "/?q") == 0);
    CHECK(ha_parse_url("tcp://10.0.0.12:5432", &u, err, sizeof(err)) == 0);
    CHECK(strcmp(u.scheme, "tcp") == 0 && u.port == 5432 && !u.has_path);
    CHECK(ha_parse_url("tcp://db:5432/", &u, err, sizeof(err)) == 0 && !u.has_path);
    CHECK(ha_parse_url("tcp://db:5432/x", &u, err, sizeof(err)) == 0 && u.has_path);
    CHECK(ha_parse_url("file:///run/beat", &u, err, sizeof(err)) == 0);
    CHECK(strcmp(u.scheme, "file") == 0 && strcmp(u.path, "/run/beat") == 0 && !u.host[0]);
    CHECK(ha_parse_url("grpc://h:50051/pkg.Svc", &u, err, sizeof(err)) == 0);
    CHECK(strcmp(u.scheme, "grpc") == 0 && strcmp(u.path, "/pkg.Svc") == 0);

    struct {
        const char *url, *msg;
    } bad[] = {
        {"", "empty"},
        {"127.0.0.1:8080", "no scheme"},
        {"ht-p://x", "unsupported scheme \"ht-p\""},
        {"file://host/x", "local path"},
        {"file://x", "local path"},
        {"http://:80/", "missing host"},
        {"http://h:0/", "port 0"},
        {"http://h:65536/", "out of range"},
        {"http://h:8o/", "not a number"},
        {"http://u@h/", "user information"},
        {"http://::1:80/", "brackets"},
        {"http://[::g]:80/", "not a valid IPv6"},
        {"http://h a/", "space"},
        {"http://h%/", "not a valid host"},
        {"http://h:/", "missing port"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        CHECK(ha_parse_url(bad[i].url, &u, err, sizeof(err)) == -1);
        CHECK_STR_CONTAINS(err, bad[i].msg);
    }
    /* Valid on the wire: what may not appear in a request target is percent-encoded. */
    CHECK(ha_parse_url("http://h/caf\xC3\xA9?q=\"<>\\^`{|}%2F", &u, err, sizeof(err)) == 0);
    CHECK(strcmp(u.path, "/caf%C3%A9?q=%22%3C%3E%5C%5E%60%7B%7C%7D%2F") == 0);
    CHECK(ha_parse_url("http://h/a%zz", &u, err, sizeof(err)) == -1);
    CHECK_STR_CONTAINS(err, "%25");
    CHECK(ha_parse_url("http://h/a%4", &u, err, sizeof(err)) == -1);
    CHECK(ha_parse_url("http://h/\xFF", &u, err, sizeof(err)) == -1);
    CHECK_STR_CONTAINS(err, "not valid UTF-8");
    CHECK(ha_parse_url("http://user:pw@h/", &u, err, sizeof(err)) == -1);
    CHECK_STR_CONTAINS(err, "\"headers\"");
    CHECK(ha_parse_url("http://h/x@y", &u, err, sizeof(err)) == 0); /* '@' in the path is fine */
    char longpath[2000] = "http://h/";
    memset(longpath + 9, 'a', 1500);
    longpath[1509] = '\0';
    CHECK(ha_parse_url(longpath, &u, err, sizeof(err)) == -1);
}

static void listen_addrs(void)
{
    char host[64], err[HA_ERR_MAX];
    uint16_t port;
    CHECK(ha_parse_listen("127.0.0.1:8099", host, sizeof(host), &port, err, sizeof(err)) == 0 &&
          port == 8099 && strcmp(host, "127.0.0.1") == 0);
    CHECK(ha_parse_listen("0.0.0.0:0", host, sizeof(host), &port, err, sizeof(err)) == 0 &&
          port == 0);
    CHECK(ha_parse_listen("localhost:1", host, sizeof(host), &port, err, sizeof(err)) == 0 &&
          strcmp(host, "127.0.0.1") == 0);
    CHECK(ha_parse_listen("[::]:8099", host, sizeof(host), &port, err, sizeof(err)) == 0 &&
          strcmp(host, "::") == 0);
    CHECK(ha_parse_listen("8099", host, sizeof(host), &port, err, sizeof(err)) == -1);
    CHECK(ha_parse_listen("127.0.0.1", host, sizeof(host), &port, err, sizeof(err)) == -1);
    CHECK_STR_CONTAINS(err, "no port");
    CHECK(ha_parse_listen("myhost:80", host, sizeof(host), &port, err, sizeof(err)) == -1);
    CHECK_STR_CONTAINS(err, "not an IP address");
    CHECK(ha_parse_listen("1.2.3.4:99999", host, sizeof(host), &port, err, sizeof(err)) == -1);
}

static void statuses(void)
{
    ha_status_range r;
    char err[HA_ERR_MAX];
    CHECK(ha_parse_status_range("200", &r, err, sizeof(err)) == 0 && r.lo == 200 && r.hi == 200);
    CHECK(ha_parse_status_range("200-399", &r, err, sizeof(err)) == 0 && r.lo == 200 &&
          r.hi == 399);
    CHECK(ha_parse_status_range("2xx", &r, err, sizeof(err)) == 0 && r.lo == 200 && r.hi == 299);
    CHECK(ha_parse_status_range("5XX", &r, err, sizeof(err)) == 0 && r.lo == 500);
    const char *bad[] = {"",    "20",   "2000", "399-200", "600",     "99",
                         "6xx", "200-", "-200", "abc",     "200-3999"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK(ha_parse_status_range(bad[i], &r, err, sizeof(err)) == -1);
    /* 1xx answers are interim, never the verdict: a check expecting one could never pass. */
    const char *interim[] = {"100", "101", "1xx", "100-299", "103"};
    for (size_t i = 0; i < sizeof(interim) / sizeof(interim[0]); i++) {
        err[0] = '\0';
        CHECK(ha_parse_status_range(interim[i], &r, err, sizeof(err)) == -1);
        CHECK_STR_CONTAINS(err, "interim");
    }
    unsigned n;
    CHECK(ha_parse_uint("3", 1, 10, &n, err, sizeof(err)) == 0 && n == 3);
    CHECK(ha_parse_uint("0", 1, 10, &n, err, sizeof(err)) == -1);
    CHECK(ha_parse_uint("11", 1, 10, &n, err, sizeof(err)) == -1);
    CHECK(ha_parse_uint("3a", 1, 10, &n, err, sizeof(err)) == -1);
    CHECK(ha_parse_uint("", 1, 10, &n, err, sizeof(err)) == -1);
}

static void hex(void)
{
    unsigned char b[16];
    size_t n = 0;
    char err[HA_ERR_MAX];
    static const unsigned char ssl[] = {0x00, 0x00, 0x00, 0x08, 0x04, 0xd2, 0x16, 0x2f};
    CHECK(ha_parse_hex("0000000804d2162f", b, sizeof(b), &n, err, sizeof(err)) == 0);
    CHECK(n == 8 && memcmp(b, ssl, 8) == 0);
    CHECK(ha_parse_hex("00 00 00 08 04 D2 16 2F", b, sizeof(b), &n, err, sizeof(err)) == 0);
    CHECK(n == 8 && memcmp(b, ssl, 8) == 0);
    CHECK(ha_parse_hex("de:ad-Be\tEF", b, sizeof(b), &n, err, sizeof(err)) == 0);
    CHECK(n == 4 && b[0] == 0xde && b[1] == 0xad && b[2] == 0xbe && b[3] == 0xef);
    CHECK(ha_parse_hex("4e", b, sizeof(b), &n, err, sizeof(err)) == 0 && n == 1 && b[0] == 'N');
    struct {
        const char *in, *msg;
    } bad[] = {
        {"", "no bytes"},
        {"abc", "odd hex digit at offset 2"},
        {"a", "odd hex digit at offset 0"},
        {"0g", "odd hex digit at offset 0"},
        {"zz", "'z' at offset 0 is not a hex digit"},
        {"00 0x", "odd hex digit at offset 3"},
        {" 00", "separator at offset 0"},
        {"00 ", "separator at offset 2"},
        {"00  11", "separator at offset 2"},
        {"0 0", "odd hex digit at offset 0"},
        {"00112233445566778899aabbccddeeff00", "more than 16 bytes"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        n = 99;
        CHECK(ha_parse_hex(bad[i].in, b, sizeof(b), &n, err, sizeof(err)) == -1);
        CHECK(n == 99);
        CHECK_STR_CONTAINS(err, bad[i].msg);
    }
    /* exactly the capacity fits */
    CHECK(ha_parse_hex("00112233445566778899aabbccddeeff", b, sizeof(b), &n, err, sizeof(err)) ==
          0);
    CHECK(n == 16 && b[15] == 0xff);
}

int main(void)
{
    hex();
    durations();
    urls();
    listen_addrs();
    statuses();
    return unit_report("unit.parse");
}
