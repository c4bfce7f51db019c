/* testapp: a controllable stand-in for the user's shell-less app, for integration tests only.
 *
 * It owns two listeners on 127.0.0.1: the "service" port (what healthagg probes) and a "control"
 * port (what a test drives). On start it prints one line, `PORTS <service> <control>`, and flushes.
 *
 * Control (GET only, answered then closed):
 *   /mode/<mode>  set the behaviour of every *new* service connection (percent-decoded); 200 `ok`,
 *                 400 on an unknown mode
 *   /mode         the current mode
 *   /count        how many service connections were accepted (each probe is one connection)
 *   /auth/<value> from now on a service request must carry `Authorization: <value>` (exactly,
 *                 percent-decoded), else it gets 401; `/auth/` alone drops the requirement
 *   /lasthead     the head of the last service request (request line and headers)
 *
 * Service modes (every answer carries `Connection: close`; the request head is read first unless
 * the mode says otherwise, so a close is a FIN, not an RST caused by unread data):
 *   ok | status:<code> | body:<text> | slow:<ms> | flap:<ms> (ok / 503 alternating every ms)
 *   hang            accept, never read, never answer
 *   hang-headers    send `HTTP/1.1 200 OK\r\nContent-Len` and stop
 *   reset           RST right after accept (SO_LINGER 0, close)
 *   close           half-close right after accept (EOF before any byte), then drain and close
 *   garbage         non-HTTP bytes, then close
 *   drip:<ms>       a valid 200 response, one byte every ms
 *   chunked-endless a chunked 200 that never sends its last chunk
 *   big:<bytes>     200 with that Content-Length, streamed from one small buffer
 *   http10          HTTP/1.0 200 without Content-Length, body then close
 *   close-mid-body  Content-Length: 100, 10 bytes, close
 *   json:<text>     200 with Content-Type: application/json and <text> as the body
 *   echo-auth       200 JSON `{"auth": "<the request's Authorization value>"}`
 *
 * SIGTERM/SIGINT close every handle and exit 0. Not part of healthagg; never shipped.
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <uv.h>

enum kind {
    M_OK,
    M_STATUS,
    M_BODY,
    M_SLOW,
    M_FLAP,
    M_HANG,
    M_HANG_HEADERS,
    M_RESET,
    M_CLOSE,
    M_GARBAGE,
    M_DRIP,
    M_CHUNKED,
    M_BIG,
    M_HTTP10,
    M_CLOSE_MID,
    M_JSON,
    M_ECHO_AUTH
};

struct mode {
    enum kind kind;
    unsigned long long arg; /* status code, ms or bytes */
    char text[512];         /* the mode as set, and body:<text>'s text */
};

struct conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    int open_handles; /* freed when both handles have closed */
    bool control, timer_used, responded, closing;
    struct mode mode;
    char head[8192];
    size_t head_len;
    char *drip; /* drip: the whole response, sent one byte per tick */
    size_t drip_len, drip_pos;
    unsigned long long big_left;
};

static uv_loop_t *loop;
static uv_tcp_t service, control;
static uv_signal_t sigterm, sigint;
static struct mode current = {M_OK, 0, "ok"};
static uint64_t mode_set_at; /* uv_now when the mode was set: flap's phase origin */
static unsigned long long service_count;
static char filler[65536];
static char auth_required[512]; /* "" = no Authorization required */
static char last_head[8192];

static void on_closed(uv_handle_t *h)
{
    struct conn *c = h->data;
    if (--c->open_handles == 0) {
        free(c->drip);
        free(c);
    }
}

static void conn_close(struct conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    if (!uv_is_closing((uv_handle_t *)&c->timer))
        uv_close((uv_handle_t *)&c->timer, on_closed);
    if (!uv_is_closing((uv_handle_t *)&c->tcp))
        uv_close((uv_handle_t *)&c->tcp, on_closed);
}

enum after { A_NOTHING, A_CLOSE, A_BIG };
struct wreq {
    uv_write_t req;
    struct conn *c;
    char *owned;
    enum after after;
};

static void send_big_chunk(struct conn *c);

static void on_written(uv_write_t *req, int status)
{
    struct wreq *w = (struct wreq *)req;
    struct conn *c = w->c;
    enum after after = w->after;
    free(w->owned);
    free(w);
    if (c->closing)
        return;
    if (status < 0) {
        conn_close(c);
        return;
    }
    if (after == A_CLOSE)
        conn_close(c);
    else if (after == A_BIG)
        send_big_chunk(c);
}

/* Write len bytes; `owned` bytes are copied, others (static) are referenced as they are. */
static void send_bytes(struct conn *c, const char *data, size_t len, bool copy, enum after after)
{
    struct wreq *w = calloc(1, sizeof *w);
    if (!w) {
        conn_close(c);
        return;
    }
    w->c = c;
    w->after = after;
    if (copy) {
        w->owned = malloc(len ? len : 1);
        if (!w->owned) {
            free(w);
            conn_close(c);
            return;
        }
        memcpy(w->owned, data, len);
        data = w->owned;
    }
    uv_buf_t buf = uv_buf_init((char *)data, (unsigned)len);
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &buf, 1, on_written) < 0) {
        free(w->owned);
        free(w);
        conn_close(c);
    }
}

/* A string literal, referenced (not copied). */
#define send_lit(c, lit, after) send_bytes((c), (lit), sizeof(lit) - 1, false, (after))

static void send_typed(struct conn *c, int code, const char *type, const char *body,
                       enum after after)
{
    char buf[10240];
    int n = snprintf(buf, sizeof buf,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                     code, code == 200 ? "OK" : "Status", type, strlen(body), body);
    if (n < 0 || (size_t)n >= sizeof buf)
        n = (int)strlen(buf);
    send_bytes(c, buf, (size_t)n, true, after);
}

static void send_text(struct conn *c, int code, const char *body, enum after after)
{
    send_typed(c, code, "text/plain", body, after);
}

/* The value of header `name` in the request head (case-insensitive name), "" when absent. */
static void header_value(const char *head, const char *name, char *out, size_t outlen)
{
    size_t nlen = strlen(name);
    out[0] = '\0';
    for (const char *line = strstr(head, "\r\n"); line && line[2] != '\r';
         line = strstr(line + 2, "\r\n")) {
        const char *h = line + 2;
        if (strncasecmp(h, name, nlen) == 0 && h[nlen] == ':') {
            const char *v = h + nlen + 1, *end = strstr(v, "\r\n");
            while (*v == ' ' || *v == '\t')
                v++;
            size_t len = end ? (size_t)(end - v) : strlen(v);
            snprintf(out, outlen, "%.*s", (int)len, v);
            return;
        }
    }
}

static void send_big_chunk(struct conn *c)
{
    if (c->big_left == 0) {
        conn_close(c);
        return;
    }
    size_t n = c->big_left < sizeof filler ? (size_t)c->big_left : sizeof filler;
    c->big_left -= n;
    send_bytes(c, filler, n, false, A_BIG);
}

static void on_drip(uv_timer_t *t)
{
    struct conn *c = t->data;
    if (c->drip_pos >= c->drip_len) {
        conn_close(c);
        return;
    }
    send_bytes(c, c->drip + c->drip_pos++, 1, true, A_NOTHING);
}

static void on_chunk(uv_timer_t *t)
{
    struct conn *c = t->data;
    /* Do not pile up memory if the client stopped reading. */
    if (uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) < 65536)
        send_lit(c, "5\r\nhello\r\n", A_NOTHING);
}

static void answer_plain(struct conn *c)
{
    if (c->mode.kind == M_STATUS)
        send_text(c, (int)c->mode.arg, c->mode.arg == 200 ? "ok" : "not ok", A_CLOSE);
    else if (c->mode.kind == M_BODY)
        send_text(c, 200, c->mode.text + 5, A_CLOSE);
    else if (c->mode.kind == M_JSON)
        send_typed(c, 200, "application/json", c->mode.text + 5, A_CLOSE);
    else if (c->mode.kind == M_FLAP && ((uv_now(loop) - mode_set_at) / c->mode.arg) % 2 == 1)
        send_text(c, 503, "flapping", A_CLOSE);
    else
        send_text(c, 200, "ok", A_CLOSE);
}

static void on_slow(uv_timer_t *t)
{
    answer_plain(t->data);
}

/* The request head has arrived on a service connection: answer as the mode says. */
static void service_respond(struct conn *c)
{
    static const char hdr[] =
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n";
    char buf[256], auth[512], body[600];
    int n;
    snprintf(last_head, sizeof last_head, "%s", c->head);
    header_value(c->head, "Authorization", auth, sizeof auth);
    if (auth_required[0] && strcmp(auth, auth_required) != 0) {
        send_text(c, 401, auth[0] ? "wrong Authorization" : "missing Authorization", A_CLOSE);
        return;
    }
    switch (c->mode.kind) {
    case M_ECHO_AUTH:
        snprintf(body, sizeof body, "{\"auth\": \"%s\"}", auth);
        send_typed(c, 200, "application/json", body, A_CLOSE);
        break;
    case M_SLOW:
        c->timer_used = true;
        uv_timer_start(&c->timer, on_slow, c->mode.arg, 0);
        break;
    case M_HANG_HEADERS:
        send_lit(c, "HTTP/1.1 200 OK\r\nContent-Len", A_NOTHING);
        break;
    case M_GARBAGE:
        send_lit(c, "\x01\x02 this is not HTTP \xff\xfe\r\n\r\n", A_CLOSE);
        break;
    case M_DRIP:
        n = snprintf(buf, sizeof buf, "%sContent-Length: 2\r\n\r\nok", hdr);
        c->drip = strdup(buf);
        if (!c->drip) {
            conn_close(c);
            return;
        }
        c->drip_len = (size_t)n;
        uv_timer_start(&c->timer, on_drip, 0, c->mode.arg ? c->mode.arg : 1);
        break;
    case M_CHUNKED:
        n = snprintf(buf, sizeof buf, "%sTransfer-Encoding: chunked\r\n\r\n", hdr);
        send_bytes(c, buf, (size_t)n, true, A_NOTHING);
        uv_timer_start(&c->timer, on_chunk, 20, 20);
        break;
    case M_BIG:
        n = snprintf(buf, sizeof buf, "%sContent-Length: %llu\r\n\r\n", hdr, c->mode.arg);
        c->big_left = c->mode.arg;
        send_bytes(c, buf, (size_t)n, true, A_BIG);
        break;
    case M_HTTP10:
        send_lit(c, "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nok from http/1.0\n",
                 A_CLOSE);
        break;
    case M_CLOSE_MID:
        n = snprintf(buf, sizeof buf, "%sContent-Length: 100\r\n\r\n0123456789", hdr);
        send_bytes(c, buf, (size_t)n, true, A_CLOSE);
        break;
    default:
        answer_plain(c);
    }
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Parse "kind[:arg]" into m; false when unknown or malformed. */
static bool parse_mode(const char *s, struct mode *m)
{
    static const struct {
        const char *name;
        enum kind kind;
        bool needs_arg;
    } table[] = {
        {"ok", M_OK, false},
        {"status", M_STATUS, true},
        {"body", M_BODY, false},
        {"slow", M_SLOW, true},
        {"flap", M_FLAP, true},
        {"hang", M_HANG, false},
        {"hang-headers", M_HANG_HEADERS, false},
        {"reset", M_RESET, false},
        {"close", M_CLOSE, false},
        {"garbage", M_GARBAGE, false},
        {"drip", M_DRIP, true},
        {"chunked-endless", M_CHUNKED, false},
        {"big", M_BIG, true},
        {"http10", M_HTTP10, false},
        {"close-mid-body", M_CLOSE_MID, false},
        {"json", M_JSON, false},
        {"echo-auth", M_ECHO_AUTH, false},
    };
    size_t namelen = strcspn(s, ":");
    if (strlen(s) >= sizeof m->text)
        return false;
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        if (strlen(table[i].name) != namelen || strncmp(s, table[i].name, namelen) != 0)
            continue;
        m->kind = table[i].kind;
        m->arg = 0;
        snprintf(m->text, sizeof m->text, "%s", s);
        if (m->kind == M_BODY || m->kind == M_JSON)
            return s[namelen] == ':';
        if (!table[i].needs_arg)
            return s[namelen] == '\0';
        if (s[namelen] != ':' || s[namelen + 1] < '0' || s[namelen + 1] > '9')
            return false;
        char *end;
        errno = 0;
        m->arg = strtoull(s + namelen + 1, &end, 10);
        if (errno || *end)
            return false;
        if (m->kind == M_STATUS)
            return m->arg >= 100 && m->arg <= 999;
        if (m->kind == M_FLAP)
            return m->arg > 0;
        return true;
    }
    return false;
}

static void control_respond(struct conn *c)
{
    char path[1024] = "", out[1200];
    /* Request line: METHOD SP PATH SP VERSION */
    const char *sp = memchr(c->head, ' ', c->head_len);
    if (sp && strncmp(c->head, "GET ", 4) == 0) {
        size_t i = 0;
        for (const char *p = sp + 1;
             p < c->head + c->head_len && *p != ' ' && *p != '\r' && i + 1 < sizeof path; p++) {
            int hi, lo;
            if (*p == '%' && p + 2 < c->head + c->head_len && (hi = hexval(p[1])) >= 0 &&
                (lo = hexval(p[2])) >= 0) {
                path[i++] = (char)(hi * 16 + lo);
                p += 2;
            } else {
                path[i++] = *p;
            }
        }
        path[i] = '\0';
    }
    struct mode m;
    if (strcmp(path, "/count") == 0) {
        snprintf(out, sizeof out, "%llu", service_count);
        send_text(c, 200, out, A_CLOSE);
    } else if (strcmp(path, "/lasthead") == 0) {
        send_text(c, 200, last_head, A_CLOSE);
    } else if (strncmp(path, "/auth/", 6) == 0 && strlen(path + 6) < sizeof auth_required) {
        snprintf(auth_required, sizeof auth_required, "%s", path + 6);
        send_text(c, 200, "ok", A_CLOSE);
    } else if (strcmp(path, "/mode") == 0) {
        send_text(c, 200, current.text, A_CLOSE);
    } else if (strncmp(path, "/mode/", 6) == 0 && parse_mode(path + 6, &m)) {
        current = m;
        mode_set_at = uv_now(loop);
        send_text(c, 200, "ok", A_CLOSE);
    } else if (strncmp(path, "/mode/", 6) == 0) {
        snprintf(out, sizeof out, "unknown mode: %.1000s", path + 6);
        send_text(c, 400, out, A_CLOSE);
    } else {
        send_text(c, 404, "not found", A_CLOSE);
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    static char scratch[65536]; /* single-threaded: reads are consumed before the next alloc */
    struct conn *c = h->data;
    (void)suggested;
    if (!c->responded && c->head_len < sizeof c->head - 1)
        *buf = uv_buf_init(c->head + c->head_len, (unsigned)(sizeof c->head - 1 - c->head_len));
    else
        *buf = uv_buf_init(scratch, sizeof scratch);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *c = s->data;
    (void)buf;
    if (nread < 0) {
        conn_close(c);
        return;
    } /* EOF or error: the peer is gone */
    if (c->responded || nread == 0)
        return; /* after the head: drain and ignore */
    c->head_len += (size_t)nread;
    c->head[c->head_len] = '\0';
    if (!strstr(c->head, "\r\n\r\n") && c->head_len < sizeof c->head - 1)
        return;
    c->responded = true;
    if (c->control)
        control_respond(c);
    else
        service_respond(c);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    (void)status;
    free(req);
}

static void on_connection(uv_stream_t *server, int status)
{
    if (status < 0)
        return;
    struct conn *c = calloc(1, sizeof *c);
    if (!c)
        return;
    c->control = server == (uv_stream_t *)&control;
    c->tcp.data = c->timer.data = c;
    c->open_handles = 2;
    uv_tcp_init(loop, &c->tcp);
    uv_timer_init(loop, &c->timer);
    if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0) {
        conn_close(c);
        return;
    }
    if (!c->control) {
        service_count++;
        c->mode = current;
    }
    if (!c->control && c->mode.kind == M_HANG)
        return; /* never read, never answer */
    if (!c->control && c->mode.kind == M_RESET) {
        uv_os_fd_t fd;
        struct linger lg = {1, 0};
        if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0)
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        conn_close(c);
        return;
    }
    if (!c->control && c->mode.kind == M_CLOSE) {
        uv_shutdown_t *req = malloc(sizeof *req);
        c->responded = true; /* only drain from now on; close on the peer's EOF */
        if (!req || uv_shutdown(req, (uv_stream_t *)&c->tcp, on_shutdown) < 0) {
            free(req);
            conn_close(c);
            return;
        }
    }
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static void close_any(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (uv_is_closing(h))
        return;
    if (h->type == UV_TCP && h != (uv_handle_t *)&service && h != (uv_handle_t *)&control) {
        conn_close(h->data);
    } else if (h->type == UV_TIMER) {
        /* connection timers are closed with their connection */
        if (h->data)
            conn_close(h->data);
        else
            uv_close(h, NULL);
    } else {
        uv_close(h, NULL);
    }
}

static void on_signal(uv_signal_t *s, int signum)
{
    (void)s;
    (void)signum;
    uv_walk(loop, close_any, NULL);
}

static int listen_on(uv_tcp_t *t, int port)
{
    struct sockaddr_in addr;
    struct sockaddr_storage bound;
    int len = sizeof bound, rc;
    uv_tcp_init(loop, t);
    uv_ip4_addr("127.0.0.1", port, &addr);
    if ((rc = uv_tcp_bind(t, (const struct sockaddr *)&addr, 0)) < 0 ||
        (rc = uv_listen((uv_stream_t *)t, 512, on_connection)) < 0) {
        fprintf(stderr, "testapp: listen 127.0.0.1:%d: %s\n", port, uv_strerror(rc));
        return -1;
    }
    uv_tcp_getsockname(t, (struct sockaddr *)&bound, &len);
    return ntohs(((struct sockaddr_in *)&bound)->sin_port);
}

int main(int argc, char **argv)
{
    int port = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
            port = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--mode") == 0 && i + 1 < argc) {
            if (!parse_mode(argv[++i], &current)) {
                fprintf(stderr, "testapp: unknown mode %s\n", argv[i]);
                return 2;
            }
        } else {
            fprintf(stderr, "usage: testapp [--port N] [--mode MODE]\n");
            return 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    memset(filler, 'x', sizeof filler);
    loop = uv_default_loop();
    mode_set_at = uv_now(loop);
    int sport = listen_on(&service, port);
    int cport = sport < 0 ? -1 : listen_on(&control, 0);
    if (sport < 0 || cport < 0)
        return 1;
    uv_signal_init(loop, &sigterm);
    uv_signal_init(loop, &sigint);
    uv_signal_start(&sigterm, on_signal, SIGTERM);
    uv_signal_start(&sigint, on_signal, SIGINT);
    printf("PORTS %d %d\n", sport, cport);
    fflush(stdout);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_loop_close(loop);
    return 0;
}
