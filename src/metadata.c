/* metadata.c - the ECS task metadata v4 client (see metadata.h).
 *
 * One request at a time on a fresh connection (the agent's endpoint is local and answers in
 * milliseconds; keeping a connection would save nothing worth its states), bounded by a timer
 * and by HA_META_MAX_BODY. The trade-off: a document is parsed whole with cJSON, allocating,
 * which is fine for something fetched at most once per check interval and only while a check
 * that names a container is failing. */
#include "healthagg/metadata.h"

#include "healthagg/parse.h"

#include <cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- the response reader --------------------------------------------------------------- */

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    ha_meta_response *r = p->data;
    if (r->len + len > HA_META_MAX_BODY) {
        snprintf(r->error, sizeof(r->error), "response body larger than %d bytes",
                 HA_META_MAX_BODY);
        return -1;
    }
    if (r->len + len + 1 > r->cap) {
        size_t cap = r->cap ? r->cap : 8192;
        while (cap < r->len + len + 1)
            cap *= 2;
        char *b = realloc(r->body, cap);
        if (!b) {
            snprintf(r->error, sizeof(r->error), "out of memory reading the response");
            return -1;
        }
        r->body = b;
        r->cap = cap;
    }
    memcpy(r->body + r->len, at, len);
    r->len += len;
    r->body[r->len] = '\0';
    return 0;
}

static int on_headers_complete(llhttp_t *p)
{
    ha_meta_response *r = p->data;
    r->status = p->status_code;
    return 0;
}

static int on_message_complete(llhttp_t *p)
{
    ha_meta_response *r = p->data;
    r->complete = true;
    return HPE_PAUSED; /* anything after the answer is not ours to read */
}

void ha_meta_response_init(ha_meta_response *r)
{
    memset(r, 0, sizeof(*r));
    llhttp_settings_init(&r->settings);
    r->settings.on_body = on_body;
    r->settings.on_headers_complete = on_headers_complete;
    r->settings.on_message_complete = on_message_complete;
    llhttp_init(&r->parser, HTTP_RESPONSE, &r->settings);
    r->parser.data = r;
}

static int parser_error(ha_meta_response *r, llhttp_errno_t e)
{
    if (!r->error[0])
        snprintf(r->error, sizeof(r->error), "invalid HTTP response: %s", llhttp_errno_name(e));
    return -1;
}

int ha_meta_response_feed(ha_meta_response *r, const char *data, size_t len)
{
    if (r->error[0])
        return -1;
    if (r->complete)
        return 0;
    llhttp_errno_t e = llhttp_execute(&r->parser, data, len);
    if (e == HPE_OK || (e == HPE_PAUSED && r->complete))
        return 0;
    return parser_error(r, e);
}

int ha_meta_response_eof(ha_meta_response *r)
{
    if (r->error[0])
        return -1;
    if (r->complete)
        return 0;
    llhttp_errno_t e = llhttp_finish(&r->parser);
    if (e != HPE_OK && !(e == HPE_PAUSED && r->complete))
        return parser_error(r, e);
    if (!r->complete) {
        snprintf(r->error, sizeof(r->error), "connection closed before the end of the response");
        return -1;
    }
    return 0;
}

void ha_meta_response_free(ha_meta_response *r)
{
    free(r->body);
    r->body = NULL;
    r->len = r->cap = 0;
}

/* --- the document ------------------------------------------------------------------------ */

static void copy_str(const cJSON *obj, const char *key, char *out, size_t outlen)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (cJSON_IsString(v))
        snprintf(out, outlen, "%s", v->valuestring);
    else if (cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble < 1e15)
        snprintf(out, outlen, "%.0f", v->valuedouble);
}

int ha_metadata_parse_task(const char *json, size_t len, ha_task_info *out, char *err,
                           size_t errlen)
{
    memset(out, 0, sizeof(*out));
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (!root) {
        snprintf(err, errlen, "not JSON");
        return -1;
    }
    int rc = -1;
    if (!cJSON_IsObject(root)) {
        snprintf(err, errlen, "not a JSON object");
        goto out;
    }
    copy_str(root, "TaskARN", out->task_arn, sizeof(out->task_arn));
    copy_str(root, "Cluster", out->cluster, sizeof(out->cluster));
    copy_str(root, "Family", out->family, sizeof(out->family));
    copy_str(root, "Revision", out->revision, sizeof(out->revision));
    copy_str(root, "LaunchType", out->launch_type, sizeof(out->launch_type));
    copy_str(root, "AvailabilityZone", out->availability_zone, sizeof(out->availability_zone));
    if (!out->task_arn[0]) {
        snprintf(err, errlen, "no TaskARN: not a task metadata document");
        goto out;
    }
    const cJSON *cs = cJSON_GetObjectItemCaseSensitive(root, "Containers");
    for (const cJSON *c = cJSON_IsArray(cs) ? cs->child : NULL; c; c = c->next) {
        if (!cJSON_IsObject(c) || out->n_containers == HA_META_MAX_CONTAINERS)
            continue;
        ha_task_container *tc = &out->containers[out->n_containers];
        copy_str(c, "Name", tc->name, sizeof(tc->name));
        if (!tc->name[0])
            continue;
        copy_str(c, "KnownStatus", tc->status, sizeof(tc->status));
        /* It goes into reasons and logs: keep it to the agent's vocabulary (A-Z, _). */
        for (char *q = tc->status; *q; q++)
            if (!((*q >= 'A' && *q <= 'Z') || *q == '_'))
                *q = '?';
        const cJSON *ec = cJSON_GetObjectItemCaseSensitive(c, "ExitCode");
        if (cJSON_IsNumber(ec) && ec->valuedouble >= -2147483648.0 &&
            ec->valuedouble <= 2147483647.0) {
            tc->exit_code = (int)ec->valuedouble;
            tc->has_exit_code = true;
        }
        out->n_containers++;
    }
    rc = 0;
out:
    cJSON_Delete(root);
    return rc;
}

void ha_metadata_describe(const ha_task_info *t, const char *container, char *buf, size_t len)
{
    for (size_t i = 0; i < t->n_containers; i++) {
        const ha_task_container *c = &t->containers[i];
        if (strcmp(c->name, container) != 0)
            continue;
        if (c->has_exit_code)
            snprintf(buf, len, "container %s %s, exit code %d", container,
                     c->status[0] ? c->status : "UNKNOWN", c->exit_code);
        else
            snprintf(buf, len, "container %s %s", container, c->status[0] ? c->status : "UNKNOWN");
        return;
    }
    snprintf(buf, len, "container %s not in the task metadata", container);
}

/* --- the client -------------------------------------------------------------------------- */

struct ha_metadata {
    uv_loop_t *loop;
    struct sockaddr_storage addr;
    char request[HA_PATH_MAX + HA_HOST_MAX + 128];
    size_t request_len;
    char target[HA_HOST_MAX + 16];
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_connect_t connect_req;
    uv_write_t write_req;
    bool busy;     /* a fetch is running, or its socket is still closing */
    bool finished; /* the running fetch has its outcome */
    bool tcp_open;
    bool closing; /* ha_metadata_close was called */
    int open_handles;
    bool ok;
    char error[192];
    ha_meta_response resp;
    ha_metadata_cb cb;
    void *cb_data;
    uint64_t timeout_ms;
    bool have_task;
    ha_task_info task;
    uint64_t fetched_ms;
    char rbuf[4096];
};

static void release_if_done(ha_metadata *m)
{
    if (m->closing && m->open_handles == 0)
        free(m);
}

static void on_tcp_closed(uv_handle_t *h)
{
    ha_metadata *m = h->data;
    m->tcp_open = false;
    m->open_handles--;
    ha_meta_response_free(&m->resp);
    m->busy = false;
    if (!m->closing && m->cb)
        m->cb(m, m->ok, m->error, m->cb_data);
    release_if_done(m);
}

static void finish(ha_metadata *m, bool ok, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void finish(ha_metadata *m, bool ok, const char *fmt, ...)
{
    if (m->finished)
        return;
    m->finished = true;
    m->ok = ok;
    m->error[0] = '\0';
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(m->error, sizeof(m->error), fmt, ap);
        va_end(ap);
    }
    uv_timer_stop(&m->timer);
    if (m->tcp_open && !uv_is_closing((uv_handle_t *)&m->tcp))
        uv_close((uv_handle_t *)&m->tcp, on_tcp_closed);
}

static void process(ha_metadata *m)
{
    ha_meta_response *r = &m->resp;
    if (r->status != 200) {
        finish(m, false, "HTTP %d from %s", r->status, m->target);
        return;
    }
    char err[128];
    ha_task_info t;
    if (ha_metadata_parse_task(r->body ? r->body : "", r->len, &t, err, sizeof(err)) != 0) {
        finish(m, false, "invalid task document from %s: %s", m->target, err);
        return;
    }
    m->task = t;
    m->have_task = true;
    m->fetched_ms = uv_now(m->loop);
    finish(m, true, NULL);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    ha_metadata *m = h->data;
    (void)suggested;
    buf->base = m->rbuf;
    buf->len = sizeof(m->rbuf);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    ha_metadata *m = s->data;
    if (m->finished)
        return;
    if (nread > 0) {
        if (ha_meta_response_feed(&m->resp, buf->base, (size_t)nread) != 0)
            finish(m, false, "%s (%s)", m->resp.error, m->target);
        else if (m->resp.complete)
            process(m);
        return;
    }
    if (nread == UV_EOF) {
        if (ha_meta_response_eof(&m->resp) != 0)
            finish(m, false, "%s (%s)", m->resp.error, m->target);
        else
            process(m);
    } else if (nread < 0) {
        finish(m, false, "read: %s (%s)", uv_strerror((int)nread), m->target);
    }
}

static void on_write(uv_write_t *req, int status)
{
    ha_metadata *m = req->data;
    if (!m->finished && status < 0)
        finish(m, false, "write: %s (%s)", uv_strerror(status), m->target);
}

static void on_connect(uv_connect_t *req, int status)
{
    ha_metadata *m = req->data;
    if (m->finished)
        return;
    if (status < 0) {
        finish(m, false, "connect: %s (%s)", uv_strerror(status), m->target);
        return;
    }
    uv_buf_t b = uv_buf_init(m->request, (unsigned)m->request_len);
    int rc = uv_write(&m->write_req, (uv_stream_t *)&m->tcp, &b, 1, on_write);
    if (rc == 0)
        rc = uv_read_start((uv_stream_t *)&m->tcp, on_alloc, on_read);
    if (rc != 0)
        finish(m, false, "%s (%s)", uv_strerror(rc), m->target);
}

static void on_timeout(uv_timer_t *t)
{
    ha_metadata *m = t->data;
    finish(m, false, "no answer from %s within %llums", m->target,
           (unsigned long long)m->timeout_ms);
}

static void on_timer_closed(uv_handle_t *h)
{
    ha_metadata *m = h->data;
    m->open_handles--;
    release_if_done(m);
}

ha_metadata *ha_metadata_new(uv_loop_t *loop, const char *base_uri, char *err, size_t errlen)
{
    ha_url u;
    char msg[HA_ERR_MAX];
    if (ha_parse_url(base_uri, &u, msg, sizeof(msg)) != 0) {
        snprintf(err, errlen, "ECS_CONTAINER_METADATA_URI_V4: %s", msg);
        return NULL;
    }
    if (strcmp(u.scheme, "http") != 0) {
        snprintf(err, errlen, "ECS_CONTAINER_METADATA_URI_V4: expected an http:// URI");
        return NULL;
    }
    ha_metadata *m = calloc(1, sizeof(*m));
    if (!m) {
        snprintf(err, errlen, "ECS_CONTAINER_METADATA_URI_V4: out of memory");
        return NULL;
    }
    m->loop = loop;
    if (u.port == 0)
        u.port = 80;
    const char *host = strcmp(u.host, "localhost") == 0 ? "127.0.0.1" : u.host;
    int rc = u.host_is_ipv6 ? uv_ip6_addr(host, u.port, (struct sockaddr_in6 *)&m->addr)
                            : uv_ip4_addr(host, u.port, (struct sockaddr_in *)&m->addr);
    if (rc != 0) {
        snprintf(err, errlen,
                 "ECS_CONTAINER_METADATA_URI_V4: host %s is not an IP address (ECS gives one)",
                 u.host);
        free(m);
        return NULL;
    }
    ha_format_hostport(u.host, u.host_is_ipv6, u.port, m->target, sizeof(m->target));
    size_t pl = strlen(u.path);
    while (pl > 1 && u.path[pl - 1] == '/')
        pl--;
    int n = snprintf(m->request, sizeof(m->request),
                     "GET %.*s/task HTTP/1.1\r\nHost: %s\r\nUser-Agent: healthagg\r\n"
                     "Accept: application/json\r\nConnection: close\r\n\r\n",
                     (int)(pl == 1 ? 0 : pl), u.path, m->target);
    if (n < 0 || (size_t)n >= sizeof(m->request)) {
        snprintf(err, errlen, "ECS_CONTAINER_METADATA_URI_V4: too long");
        free(m);
        return NULL;
    }
    m->request_len = (size_t)n;
    if ((rc = uv_timer_init(loop, &m->timer)) != 0) {
        snprintf(err, errlen, "task metadata: timer: %s", uv_strerror(rc));
        free(m);
        return NULL;
    }
    m->timer.data = m;
    m->open_handles = 1;
    m->connect_req.data = m;
    m->write_req.data = m;
    return m;
}

int ha_metadata_fetch(ha_metadata *m, uint64_t timeout_ms, ha_metadata_cb cb, void *data)
{
    if (m->busy || m->closing)
        return UV_EALREADY;
    int rc = uv_tcp_init(m->loop, &m->tcp);
    if (rc != 0)
        return rc;
    m->tcp.data = m;
    m->tcp_open = true;
    m->open_handles++;
    m->busy = true;
    m->finished = false;
    m->ok = false;
    m->cb = cb;
    m->cb_data = data;
    m->timeout_ms = timeout_ms;
    ha_meta_response_init(&m->resp);
    rc = uv_tcp_connect(&m->connect_req, &m->tcp, (const struct sockaddr *)&m->addr, on_connect);
    if (rc == 0)
        rc = uv_timer_start(&m->timer, on_timeout, timeout_ms, 0);
    if (rc != 0)
        finish(m, false, "connect: %s (%s)", uv_strerror(rc), m->target);
    return 0;
}

bool ha_metadata_busy(const ha_metadata *m)
{
    return m->busy;
}

const ha_task_info *ha_metadata_task(const ha_metadata *m, uint64_t *fetched_ms)
{
    if (fetched_ms)
        *fetched_ms = m->fetched_ms;
    return m->have_task ? &m->task : NULL;
}

void ha_metadata_close(ha_metadata *m)
{
    if (!m || m->closing)
        return;
    m->closing = true;
    m->finished = true;
    if (m->tcp_open && !uv_is_closing((uv_handle_t *)&m->tcp))
        uv_close((uv_handle_t *)&m->tcp, on_tcp_closed);
    uv_close((uv_handle_t *)&m->timer, on_timer_closed);
}

typedef struct once_result {
    bool done, ok;
    char error[192];
} once_result;

static void on_once(ha_metadata *m, bool ok, const char *error, void *data)
{
    (void)m;
    once_result *r = data;
    r->done = true;
    r->ok = ok;
    snprintf(r->error, sizeof(r->error), "%s", error ? error : "");
}

int ha_metadata_fetch_once(const char *base_uri, uint64_t timeout_ms, ha_task_info *out, char *err,
                           size_t errlen)
{
    uv_loop_t loop;
    int rc = uv_loop_init(&loop);
    if (rc != 0) {
        snprintf(err, errlen, "task metadata: event loop: %s", uv_strerror(rc));
        return -1;
    }
    ha_metadata *m = ha_metadata_new(&loop, base_uri, err, errlen);
    bool made = m != NULL;
    once_result r = {false, false, ""};
    if (m) {
        rc = ha_metadata_fetch(m, timeout_ms, on_once, &r);
        if (rc == 0)
            uv_run(&loop, UV_RUN_DEFAULT);
        else
            snprintf(r.error, sizeof(r.error), "task metadata: %s", uv_strerror(rc));
        const ha_task_info *t = ha_metadata_task(m, NULL);
        if (r.ok && t)
            *out = *t;
        ha_metadata_close(m);
        uv_run(&loop, UV_RUN_DEFAULT);
        if (!r.ok)
            snprintf(err, errlen, "%s", r.error[0] ? r.error : "task metadata: no answer");
    }
    if (uv_loop_close(&loop) != 0)
        uv_run(&loop, UV_RUN_DEFAULT);
    return made && r.ok ? 0 : -1;
}
