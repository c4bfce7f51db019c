/* tls_client.c - drives the TLS byte pipe (src/checks/tls.c) over a plain blocking socket, for the
 * TLS tests and the handshake benchmark: no event loop, no probe engine, so what it measures and
 * what fails is the TLS layer alone.
 *
 *   tls_client HOST PORT [--ca-file F] [--server-name N] [--insecure] [--client-cert C]
 *              [--client-key K] [--min-version 12|13] [--alpn P] [--count N] [--path P]
 *
 * Makes N connections in a row (one ha_tls, so later ones may resume), each sending
 * `GET PATH HTTP/1.1` and reading the answer to the end; prints one line per connection:
 *   ok resumed=0 version=TLSv1.3 alpn=http/1.1 not_after=... status="HTTP/1.1 200 OK"
 *   fail reason="tls: certificate verify failed: expired (notAfter ...)"
 * Exit 0 when every connection got an HTTP answer, 1 otherwise, 2 on usage or setup errors. */
#include "healthagg/tls.h"

#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

typedef struct conn {
    int fd;
    char answer[256];
    size_t answer_len;
} conn;

static int send_raw(void *ctx, const unsigned char *data, size_t len)
{
    conn *c = ctx;
    while (len > 0) {
        ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL);
        if (n <= 0)
            return -1;
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

static int deliver(void *ctx, const char *data, size_t len)
{
    conn *c = ctx;
    size_t room = sizeof(c->answer) - 1 - c->answer_len;
    size_t n = len < room ? len : room;
    memcpy(c->answer + c->answer_len, data, n);
    c->answer_len += n;
    c->answer[c->answer_len] = '\0';
    return 0;
}

static int dial(const char *host, const char *port)
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, port, &hints, &res) != 0 || !res)
        return -1;
    int fd = socket(res->ai_family, SOCK_STREAM, 0);
    struct timeval tv = {5, 0};
    if (fd >= 0) {
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        if (connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    return fd;
}

/* One connection; returns 0 when an HTTP answer came back. */
static int one(ha_tls *t, const char *host, const char *port, const char *path)
{
    conn c = {.fd = dial(host, port)};
    if (c.fd < 0) {
        printf("fail reason=\"connect failed\"\n");
        return 1;
    }
    ha_tls_io io = {.ctx = &c, .send_raw = send_raw, .deliver = deliver};
    char buf[4096];
    bool sent = false;
    ha_tls_status st = ha_tls_begin(t, &io) == 0 ? ha_tls_drive(t, NULL, 0) : HA_TLS_FAILED;
    while (st == HA_TLS_HANDSHAKING || st == HA_TLS_OPEN) {
        if (st == HA_TLS_OPEN && !sent) {
            char req[512];
            int n =
                snprintf(req, sizeof(req),
                         "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", path, host);
            if (ha_tls_write(t, req, (size_t)n) != 0)
                break;
            sent = true;
        }
        ssize_t n = recv(c.fd, buf, sizeof(buf), 0);
        if (n <= 0) {
            ha_tls_eof(t);
            break;
        }
        st = ha_tls_drive(t, buf, (size_t)n);
    }
    close(c.fd);
    st = ha_tls_status_of(t);
    if (c.answer_len > 0 && st != HA_TLS_FAILED) {
        ha_tls_info info;
        ha_tls_get_info(t, &info);
        char *eol = strstr(c.answer, "\r\n");
        if (eol)
            *eol = '\0';
        char when[32];
        ha_tls_format_time(info.not_after, when, sizeof(when));
        printf("ok resumed=%d version=%s alpn=%s not_after=%s status=\"%s\"\n", info.resumed,
               info.version ? info.version : "?", info.alpn ? info.alpn : "none", when, c.answer);
        return 0;
    }
    printf("fail reason=\"%s\"\n",
           st == HA_TLS_FAILED ? ha_tls_reason(t) : "connection closed without an answer");
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: tls_client HOST PORT [options] (see the source)\n");
        return 2;
    }
    ha_tls_options o;
    memset(&o, 0, sizeof(o));
    o.min_version = 12;
    const char *alpn = "http/1.1", *path = "/";
    int count = 1;
    for (int i = 3; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--insecure") == 0) {
            o.insecure_skip_verify = true;
            continue;
        }
        if (!v) {
            fprintf(stderr, "tls_client: %s needs a value\n", a);
            return 2;
        }
        i++;
        if (strcmp(a, "--ca-file") == 0)
            snprintf(o.ca_file, sizeof(o.ca_file), "%s", v);
        else if (strcmp(a, "--server-name") == 0)
            snprintf(o.server_name, sizeof(o.server_name), "%s", v);
        else if (strcmp(a, "--client-cert") == 0)
            snprintf(o.client_cert, sizeof(o.client_cert), "%s", v);
        else if (strcmp(a, "--client-key") == 0)
            snprintf(o.client_key, sizeof(o.client_key), "%s", v);
        else if (strcmp(a, "--min-version") == 0)
            o.min_version = (uint8_t)atoi(v);
        else if (strcmp(a, "--alpn") == 0)
            alpn = v;
        else if (strcmp(a, "--count") == 0)
            count = atoi(v);
        else if (strcmp(a, "--path") == 0)
            path = v;
        else {
            fprintf(stderr, "tls_client: unknown option %s\n", a);
            return 2;
        }
    }
    char err[512];
    if (ha_tls_options_check(&o, err, sizeof(err)) != 0) {
        printf("config %s\n", err);
        return 2;
    }
    ha_tls *t = NULL;
    if (ha_tls_new(&t, &o, argv[1], alpn, err, sizeof(err)) != 0) {
        printf("config %s\n", err);
        return 2;
    }
    int failed = 0;
    for (int i = 0; i < count; i++)
        failed += one(t, argv[1], argv[2], path);
    ha_tls_info info;
    ha_tls_get_info(t, &info);
    printf("handshakes full=%u resumed=%u\n", info.full_handshakes, info.resumed_handshakes);
    ha_tls_free(t);
    return failed ? 1 : 0;
}
