/* probe.c - `healthagg probe`, the command ECS runs as the sidecar's healthCheck.
 *
 * It runs every few seconds for the life of the task, so it is built to cost as little as a
 * process can: no event loop, no allocation, no stdio on the healthy path, a blocking socket
 * whose kernel timeouts (SO_SNDTIMEO for connect and send, SO_RCVTIMEO for each receive, set
 * to what is left of one deadline) bound the whole exchange: socket, connect, send, one or two
 * receives, one write of the verdict. A non-blocking socket driven by poll() would cost a
 * poll and a getsockopt per connect and an EAGAIN + poll per receive, for the same bound.
 * It reads the sidecar's cached /readyz answer and turns it into Docker's contract: exit 0
 * healthy, 1 unhealthy - never 2, which Docker reserves - with one short line on stdout and
 * nothing on stderr. When not healthy, the verdict is also written to the container's log stream
 * (see mirror()); that path may allocate, the healthy one still does not. A non-literal host is
 * resolved with c-ares under the same deadline (getaddrinfo could not be bounded), and each of
 * its addresses is tried in turn; the default URL and any URL derived from the listen address
 * are literals, which skip all of that. */
#include "healthagg/commands.h"
#include "healthagg/log.h"
#include "healthagg/parse.h"
#include "healthagg/quote.h"
#include "healthagg/resolve.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define PROBE_BUF 4096

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sets a socket timeout to what is left before the deadline; returns 0 if none is left. */
static int set_timeout(int fd, int opt, int64_t deadline)
{
    int64_t left = deadline - mono_ms();
    if (left <= 0)
        return 0;
    struct timeval tv = {(time_t)(left / 1000), (suseconds_t)(left % 1000) * 1000};
    return setsockopt(fd, SOL_SOCKET, opt, &tv, sizeof(tv)) == 0 ? 1 : -1;
}

/* Decimal digits of v at p; returns the length. */
static size_t put_uint(char *p, unsigned v)
{
    char tmp[12];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        p[i] = tmp[n - 1 - i];
    return n;
}

/* Finds Content-Length among the header lines in [buf, end); -1 when absent. Checks only the
 * start of each line: cheaper than a case-insensitive search of the whole head. */
static long content_length(const char *buf, const char *end)
{
    static const char name[] = "content-length:";
    for (const char *p = buf; p + sizeof(name) < end; p++) {
        if (p[0] != '\n' || (p[1] | 0x20) != 'c')
            continue;
        if (strncasecmp(p + 1, name, sizeof(name) - 1) == 0)
            return strtol(p + sizeof(name), NULL, 10);
    }
    return -1;
}

/* Connects to the first address that accepts, each getting an equal share of the time left
 * (the last one all of it): a name with a dead address (an IPv6 one nothing listens on) must
 * not eat the whole timeout. Returns the socket, or -1 with `why` naming each address tried. */
static int connect_any(const ha_addr_list *addrs, int64_t deadline, char *why, size_t whylen,
                       bool *timed_out, const char **last_error)
{
    *last_error = "timeout";
    size_t off = 0;
    why[0] = '\0';
    *timed_out = false;
    for (size_t i = 0; i < addrs->n; i++) {
        const struct sockaddr_storage *ss = &addrs->addr[i];
        int64_t left = deadline - mono_ms();
        if (left <= 0) {
            *timed_out = true;
            break;
        }
        int64_t share = left / (int64_t)(addrs->n - i);
        int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            snprintf(why, whylen, "socket: %s", strerror(errno));
            return -1;
        }
        if (set_timeout(fd, SO_SNDTIMEO, mono_ms() + (share > 0 ? share : 1)) <= 0) {
            snprintf(why, whylen, "socket: cannot set a timeout (%s)", strerror(errno));
            close(fd);
            return -1;
        }
        socklen_t len =
            ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
        if (connect(fd, (const struct sockaddr *)ss, len) == 0)
            return fd;
        int e = errno;
        close(fd);
        bool slow = e == EINPROGRESS || e == EAGAIN || e == EINTR;
        *timed_out = slow;
        *last_error = slow ? "timeout" : strerror(e);
        char addr[64];
        ha_addr_format(ss, addr, sizeof(addr));
        if (off < whylen) {
            int n = snprintf(why + off, whylen - off, "%s%s: %s", off ? ", then " : "", addr,
                             slow ? "timeout" : strerror(e));
            off += n > 0 ? (size_t)n : 0;
        }
    }
    return -1;
}

/* The first line of `s` (up to len) as printable UTF-8, cut on a character boundary: the
 * verdict line must stay one valid line whatever the other end sent. */
static void first_line(const char *s, size_t len, char *out, size_t outlen)
{
    size_t n = 0;
    while (n < len && s[n] != '\n' && s[n] != '\r')
        n++;
    ha_printable(out, outlen, s, n);
}

typedef struct probe_out {
    FILE *out;
    ha_mirror_mode mirror;
    const char *url;
} probe_out;

int ha_mirror_parse(const char *s, ha_mirror_mode *out)
{
    static const char *const names[] = {"never", "failures", "always"};
    for (int i = 0; i < 3; i++)
        if (strcmp(s, names[i]) == 0) {
            *out = (ha_mirror_mode)i;
            return 0;
        }
    return -1;
}

/* The verdict as one JSON log line on PID 1's stdout: in a container that is the log stream
 * (docker logs, awslogs/CloudWatch), which shows nothing of a health command's own output. It
 * is written even when the sidecar cannot log (wedged, stopped), which is when it matters.
 * Every failure here is ignored: the exit status is the verdict. Non-blocking, so a full pipe
 * can't hold the probe past its deadline; skipped when our stdout already is that stream. */
static void mirror(const probe_out *po, bool healthy, const char *reason)
{
    int fd = open("/proc/1/fd/1", O_WRONLY | O_APPEND | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return;
    struct stat a, b;
    if (fstat(fd, &a) == 0 && fstat(fileno(po->out), &b) == 0 && a.st_dev == b.st_dev &&
        a.st_ino == b.st_ino) {
        close(fd);
        return;
    }
    cJSON *o = ha_log_begin(healthy ? "info" : "warn", "probe");
    char *text = NULL;
    if (o && cJSON_AddStringToObject(o, "verdict", healthy ? "healthy" : "unhealthy") &&
        cJSON_AddStringToObject(o, "reason", reason) &&
        cJSON_AddNumberToObject(o, "exit_code", healthy ? 0 : 1) &&
        cJSON_AddStringToObject(o, "url", po->url) &&
        cJSON_AddNumberToObject(o, "pid", (double)getpid()))
        text = ha_json_fix_utf8(cJSON_PrintUnformatted(o)); /* valid UTF-8 JSON, always */
    cJSON_Delete(o);
    if (text) {
        size_t n = strlen(text);
        char *line = realloc(text, n + 2);
        if (line) {
            text = line;
            text[n++] = '\n';
            ssize_t w = write(fd, text, n); /* one write: lines from concurrent writers don't mix */
            (void)w;
        }
        free(text);
    }
    close(fd);
}

static int unhealthy(const probe_out *po, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int unhealthy(const probe_out *po, const char *fmt, ...)
{
    char reason[800];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    fprintf(po->out, "unhealthy: %s\n", reason);
    fflush(po->out);
    if (po->mirror != HA_MIRROR_NEVER)
        mirror(po, false, reason);
    return 1;
}

/* Writes the whole line with one system call: no stdio buffering on the healthy path. */
static void emit(FILE *out, const char *line, size_t len)
{
    fflush(out);
    ssize_t w = write(fileno(out), line, len);
    (void)w; /* nobody to tell: stdout is our only channel */
}

int ha_cmd_probe(const char *url, uint64_t timeout_ms, ha_mirror_mode mirror_mode, FILE *out)
{
    int64_t deadline = mono_ms() + (int64_t)timeout_ms;
    const probe_out pos = {out, mirror_mode, url}, *po = &pos;
    ha_url u;
    char err[HA_ERR_MAX];
    int bad = ha_parse_url(url, &u, err, sizeof(err));
    if (bad == 0 && strcmp(u.scheme, "http") != 0) {
        snprintf(err, sizeof(err),
                 "the sidecar answers http://, e.g. http://127.0.0.1:8099/readyz");
        bad = -1;
    }
    if (bad != 0) {
        char shown[200]; /* a --url may hold any bytes: the line stays printable UTF-8 */
        ha_printable(shown, sizeof(shown), url, strlen(url));
        return unhealthy(po, "bad --url %s: %s", shown, err);
    }
    if (u.port == 0)
        u.port = 80;
    /* "host:port" (bracketed for IPv6), the Host header and the name in messages. */
    char target[HA_HOST_MAX + 16];
    size_t hl = strlen(u.host), tl = 0;
    if (u.host_is_ipv6)
        target[tl++] = '[';
    memcpy(target + tl, u.host, hl);
    tl += hl;
    if (u.host_is_ipv6)
        target[tl++] = ']';
    target[tl++] = ':';
    tl += put_uint(target + tl, u.port);
    target[tl] = '\0';

    /* Literals (always the case for the derived default URL) never touch a resolver; a name
     * is resolved with c-ares, bounded by the same deadline as everything else. */
    ha_addr_list addrs;
    if (!ha_addr_literal(u.host, u.host_is_ipv6, u.port, &addrs) &&
        ha_resolve_blocking(u.host, u.port, deadline, &addrs, err, sizeof(err)) != 0)
        return unhealthy(po, "cannot resolve %s: %s", u.host, err);
    char why[256];
    bool timed_out;
    const char *last_error;
    int fd = connect_any(&addrs, deadline, why, sizeof(why), &timed_out, &last_error);
    if (fd < 0) {
        if (addrs.n > 1)
            return unhealthy(po, "no sidecar reachable at %s (%s)", target, why);
        if (timed_out)
            return unhealthy(po, "no answer from the sidecar at %s within %llums", target,
                             (unsigned long long)timeout_ms);
        if (strncmp(why, "socket:", 7) == 0)
            return unhealthy(po, "%s", why);
        return unhealthy(po, "no sidecar listening on %s (%s)", target, last_error);
    }
    int rc = 1;
    if (set_timeout(fd, SO_SNDTIMEO, deadline) <= 0) {
        unhealthy(po, "no answer from the sidecar at %s within %llums", target,
                  (unsigned long long)timeout_ms);
        goto done;
    }

    static const char r1[] = "GET ", r2[] = " HTTP/1.1\r\nHost: ",
                      r3[] = "\r\nUser-Agent: healthagg-probe\r\nConnection: close\r\n\r\n";
    char req[HA_PATH_MAX + HA_HOST_MAX + 96];
    size_t pl = strlen(u.path), n = 0;
    memcpy(req + n, r1, sizeof(r1) - 1);
    n += sizeof(r1) - 1;
    memcpy(req + n, u.path, pl);
    n += pl;
    memcpy(req + n, r2, sizeof(r2) - 1);
    n += sizeof(r2) - 1;
    memcpy(req + n, target, tl);
    n += tl;
    memcpy(req + n, r3, sizeof(r3) - 1);
    n += sizeof(r3) - 1;
    if (send(fd, req, n, MSG_NOSIGNAL) != (ssize_t)n) {
        unhealthy(po, "could not send the request to %s (%s)", target, strerror(errno));
        goto done;
    }

    char buf[PROBE_BUF];
    size_t got = 0, head = 0; /* head: where the final answer starts, after interim ones */
    long clen = -1;
    const char *body = NULL;
    for (;;) {
        int t = set_timeout(fd, SO_RCVTIMEO, deadline);
        if (t <= 0) {
            unhealthy(po, "no answer from the sidecar at %s within %llums", target,
                      (unsigned long long)timeout_ms);
            goto done;
        }
        ssize_t r = recv(fd, buf + got, sizeof(buf) - 1 - got, 0);
        if (r > 0) {
            got += (size_t)r;
            buf[got] = '\0';
            const char *end;
            while (!body && (end = strstr(buf + head, "\r\n\r\n")) != NULL) {
                /* An interim answer (100 Continue, 103 Early Hints) may come first: the verdict
                 * is in the final one after it (101 is final: the sidecar never switches). */
                const char *h = buf + head;
                if (memcmp(h, "HTTP/1.", 7) == 0 && h[9] == '1' &&
                    !(h[10] == '0' && h[11] == '1')) {
                    head = (size_t)(end + 4 - buf);
                    continue;
                }
                body = end + 4;
                clen = content_length(h, body);
            }
            if (body && clen >= 0 && (size_t)(buf + got - body) >= (size_t)clen)
                break;
            if (got == sizeof(buf) - 1)
                break; /* enough to judge: the status line and the start of the reason */
            continue;
        }
        if (r == 0)
            break;
        if (errno == EINTR)
            continue;
        if (errno == ECONNRESET && got == 0)
            break; /* closed without a word: said below */
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            unhealthy(po, "no answer from the sidecar at %s within %llums", target,
                      (unsigned long long)timeout_ms);
        else
            unhealthy(po, "connection to the sidecar at %s failed (%s)", target, strerror(errno));
        goto done;
    }

    if (got == 0) {
        /* healthagg answers even a connection it refuses (503 "busy"); nothing at all means it
         * closed before it could, or something else holds the port. */
        unhealthy(po,
                  "the sidecar at %s closed the connection without answering: it refuses "
                  "connections beyond server.max_connections, or it is shutting down",
                  target);
        goto done;
    }
    /* "HTTP/1.x NNN" of the final answer */
    const char *h = buf + head;
    size_t hgot = got - head;
    int status = -1;
    if (hgot >= 12 && memcmp(h, "HTTP/1.", 7) == 0 && h[8] == ' ' && h[9] >= '1' && h[9] <= '5' &&
        h[10] >= '0' && h[10] <= '9' && h[11] >= '0' && h[11] <= '9')
        status = (h[9] - '0') * 100 + (h[10] - '0') * 10 + (h[11] - '0');
    if (status < 0) {
        char line[120];
        first_line(h, hgot, line, sizeof(line));
        unhealthy(po, "%s did not answer like healthagg (\"%s\")", target, line);
        goto done;
    }
    char reason[600] = "";
    if (body)
        first_line(body, got - (size_t)(body - buf), reason, sizeof(reason));
    if (status == 200) {
        /* "ok" or "ok (warn: db: ...)": keep the warning, it is the useful part. */
        char line[sizeof(reason) + 16];
        size_t ll = 7;
        memcpy(line, "healthy", 7);
        if (strncmp(reason, "ok ", 3) == 0) {
            size_t rl = strlen(reason + 2);
            memcpy(line + ll, reason + 2, rl);
            ll += rl;
        }
        line[ll++] = '\n';
        emit(out, line, ll);
        rc = 0;
        if (mirror_mode == HA_MIRROR_ALWAYS) {
            line[ll - 1] = '\0';
            mirror(po, true, line);
        }
    } else if (reason[0]) {
        unhealthy(po, "%s", reason);
    } else {
        unhealthy(po, "HTTP %d from %s", status, target);
    }
done:
    close(fd);
    return rc;
}
