/* probe.c - `healthagg probe`, the command ECS runs as the sidecar's healthCheck.
 *
 * It runs every few seconds for the life of the task, so it is built to cost as little as a
 * process can: no event loop, no allocation, one non-blocking socket driven by poll() against
 * a single deadline that covers connect, send and receive. It reads the sidecar's cached
 * /readyz answer and turns it into Docker's contract: exit 0 healthy, 1 unhealthy - never 2,
 * which Docker reserves - with one short line on stdout saying why and nothing on stderr.
 * Name resolution for a non-literal host uses blocking getaddrinfo(); the default URL and
 * any URL derived from the listen address are literals, so the common path never resolves. */
#define _GNU_SOURCE /* strcasestr */
#include "healthagg/commands.h"
#include "healthagg/parse.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PROBE_BUF 4096

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for `events` on fd until the deadline; returns 1 ready, 0 timed out, -1 error. */
static int wait_fd(int fd, short events, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - mono_ms();
        if (left <= 0)
            return 0;
        struct pollfd p = {.fd = fd, .events = events};
        int rc = poll(&p, 1, (int)left);
        if (rc > 0)
            return 1;
        if (rc == 0)
            return 0;
        if (errno != EINTR)
            return -1;
    }
}

static int resolve(const ha_url *u, struct sockaddr_storage *ss, socklen_t *len)
{
    memset(ss, 0, sizeof(*ss));
    const char *host = strcmp(u->host, "localhost") == 0 ? "127.0.0.1" : u->host;
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons(u->port);
        *len = sizeof(*s4);
        return 0;
    }
    if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(u->port);
        *len = sizeof(*s6);
        return 0;
    }
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    char port[8];
    snprintf(port, sizeof(port), "%u", (unsigned)u->port);
    if (getaddrinfo(host, port, &hints, &res) != 0 || !res)
        return -1;
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

/* Copies the first line of `s` (up to len) into out, dropping control characters. */
static void first_line(const char *s, size_t len, char *out, size_t outlen)
{
    size_t o = 0;
    for (size_t i = 0; i < len && o + 1 < outlen; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n' || c == '\r')
            break;
        if (c >= 0x20 && c != 0x7f)
            out[o++] = (char)c;
    }
    out[o] = '\0';
}

static int unhealthy(FILE *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int unhealthy(FILE *out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("unhealthy: ", out);
    vfprintf(out, fmt, ap);
    fputc('\n', out);
    fflush(out);
    va_end(ap);
    return 1;
}

int ha_cmd_probe(const char *url, uint64_t timeout_ms, FILE *out)
{
    int64_t deadline = mono_ms() + (int64_t)timeout_ms;
    ha_url u;
    char err[HA_ERR_MAX], target[HA_HOST_MAX + 16], ms[32];
    snprintf(ms, sizeof(ms), "%llums", (unsigned long long)timeout_ms);
    if (ha_parse_url(url, &u, err, sizeof(err)) != 0)
        return unhealthy(out, "bad --url %s: %s", url, err);
    if (u.scheme != HA_SCHEME_HTTP)
        return unhealthy(out,
                         "bad --url %s: the sidecar answers http://, e.g. "
                         "http://127.0.0.1:8099/readyz",
                         url);
    ha_format_hostport(u.host, u.host_is_ipv6, u.port, target, sizeof(target));

    struct sockaddr_storage ss;
    socklen_t sslen;
    if (resolve(&u, &ss, &sslen) != 0)
        return unhealthy(out, "cannot resolve %s", u.host);
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return unhealthy(out, "socket: %s", strerror(errno));

    int rc = 1;
    if (connect(fd, (struct sockaddr *)&ss, sslen) != 0) {
        if (errno != EINPROGRESS) {
            unhealthy(out, "no sidecar listening on %s (%s)", target, strerror(errno));
            goto done;
        }
        int w = wait_fd(fd, POLLOUT, deadline);
        int soerr = 0;
        socklen_t sl = sizeof(soerr);
        if (w == 0) {
            unhealthy(out, "no answer from the sidecar at %s within %s", target, ms);
            goto done;
        }
        if (w < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr != 0) {
            unhealthy(out, "no sidecar listening on %s (%s)", target,
                      strerror(soerr ? soerr : errno));
            goto done;
        }
    }

    char req[HA_PATH_MAX + HA_HOST_MAX + 96];
    int reqlen = snprintf(req, sizeof(req),
                          "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: healthagg-probe\r\n"
                          "Connection: close\r\n\r\n",
                          u.path, target);
    if (reqlen < 0 || (size_t)reqlen >= sizeof(req) ||
        send(fd, req, (size_t)reqlen, MSG_NOSIGNAL) != reqlen) {
        unhealthy(out, "could not send the request to %s (%s)", target, strerror(errno));
        goto done;
    }

    char buf[PROBE_BUF];
    size_t got = 0;
    long content_length = -1;
    const char *body = NULL;
    for (;;) {
        ssize_t n = recv(fd, buf + got, sizeof(buf) - 1 - got, 0);
        if (n > 0) {
            got += (size_t)n;
            buf[got] = '\0';
            if (!body && (body = strstr(buf, "\r\n\r\n")) != NULL) {
                body += 4;
                const char *cl = strcasestr(buf, "\r\ncontent-length:");
                if (cl && cl < body)
                    content_length = strtol(cl + 17, NULL, 10);
            }
            if (body && content_length >= 0 && (size_t)(buf + got - body) >= (size_t)content_length)
                break;
            if (got == sizeof(buf) - 1)
                break; /* enough to judge: the status line and the start of the reason */
            continue;
        }
        if (n == 0)
            break;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            unhealthy(out, "connection to the sidecar at %s failed (%s)", target, strerror(errno));
            goto done;
        }
        int w = wait_fd(fd, POLLIN, deadline);
        if (w == 0) {
            unhealthy(out, "no answer from the sidecar at %s within %s", target, ms);
            goto done;
        }
        if (w < 0) {
            unhealthy(out, "poll: %s", strerror(errno));
            goto done;
        }
    }

    int status = 0;
    if (got < 12 || sscanf(buf, "HTTP/1.%*1[01] %3d", &status) != 1) {
        char line[120];
        first_line(buf, got, line, sizeof(line));
        unhealthy(out, "%s did not answer like healthagg (\"%s\")", target, line);
        goto done;
    }
    char reason[600] = "";
    if (body)
        first_line(body, got - (size_t)(body - buf), reason, sizeof(reason));
    if (status == 200) {
        /* "ok" or "ok (warn: db: ...)": keep the warning, it is the useful part. */
        fprintf(out, "healthy%s\n", strncmp(reason, "ok ", 3) == 0 ? reason + 2 : "");
        fflush(out);
        rc = 0;
    } else if (reason[0]) {
        unhealthy(out, "%s", reason);
    } else {
        unhealthy(out, "HTTP %d from %s", status, target);
    }
done:
    close(fd);
    return rc;
}
