/* metadata.h - the ECS task metadata endpoint (v4) client: ${ECS_CONTAINER_METADATA_URI_V4}/task.
 *
 * On ECS the agent serves, inside every task, a JSON document describing the task (ARN, family,
 * revision, launch type, availability zone) and each of its containers (name, status, exit code).
 * healthagg reads it for two things: the startup line says which task this is, and a failing
 * check that names its task container (`"container": "app"`) says how that container is doing
 * ("container app STOPPED, exit code 137"). The endpoint is never a reason for a check to fail:
 * every error here is reported once and otherwise ignored.
 *
 * The client is asynchronous on the loop it is given (libuv TCP, llhttp, cJSON), one request at a
 * time; the parsers are pure functions, shared with the fuzz target. */
#ifndef HEALTHAGG_METADATA_H
#define HEALTHAGG_METADATA_H

#include "healthagg/config.h"

#include <llhttp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define HA_META_MAX_CONTAINERS 32
#define HA_META_MAX_BODY (256 * 1024)

typedef struct ha_task_container {
    char name[HA_NAME_MAX];
    char status[24]; /* KnownStatus: PENDING, RUNNING, STOPPED, ... */
    int exit_code;
    bool has_exit_code;
} ha_task_container;

typedef struct ha_task_info {
    char task_arn[256];
    char cluster[256];
    char family[128];
    char revision[16];
    char launch_type[16];
    char availability_zone[48];
    ha_task_container containers[HA_META_MAX_CONTAINERS];
    size_t n_containers;
} ha_task_info;

/* Parses the /task document; 0, or -1 with a reason in err. Unknown fields are ignored (the
 * agent adds fields over time); missing ones stay empty. */
int ha_metadata_parse_task(const char *json, size_t len, ha_task_info *out, char *err,
                           size_t errlen);
/* "container app STOPPED, exit code 137", "container app RUNNING", or "container app not in
 * the task metadata". */
void ha_metadata_describe(const ha_task_info *t, const char *container, char *buf, size_t len);

/* An HTTP response read into memory (status and body), bounded by HA_META_MAX_BODY. */
typedef struct ha_meta_response {
    llhttp_t parser;
    llhttp_settings_t settings;
    int status;
    char *body; /* owned */
    size_t len, cap;
    bool complete;
    char error[96]; /* set when the bytes are not an acceptable HTTP response */
} ha_meta_response;

void ha_meta_response_init(ha_meta_response *r);
/* Returns 0 while the response is fine so far (check r->complete), -1 on an error (r->error). */
int ha_meta_response_feed(ha_meta_response *r, const char *data, size_t len);
/* The peer closed: completes a response framed by the end of the connection. */
int ha_meta_response_eof(ha_meta_response *r);
void ha_meta_response_free(ha_meta_response *r);

typedef struct ha_metadata ha_metadata;
/* Called once per ha_metadata_fetch, on success (ha_metadata_task is fresh) or error. */
typedef void (*ha_metadata_cb)(ha_metadata *m, bool ok, const char *error, void *data);

/* A client for the endpoint base URI (the environment variable's value, http://IP[:PORT]/PATH;
 * IP literals only, as ECS gives them). NULL with a reason in err when the URI is unusable. */
ha_metadata *ha_metadata_new(uv_loop_t *loop, const char *base_uri, char *err, size_t errlen);
/* Starts a request unless one is in flight (then returns UV_EALREADY and cb is not called). */
int ha_metadata_fetch(ha_metadata *m, uint64_t timeout_ms, ha_metadata_cb cb, void *data);
bool ha_metadata_busy(const ha_metadata *m);
/* The last document read successfully, or NULL; and the loop time it arrived. */
const ha_task_info *ha_metadata_task(const ha_metadata *m, uint64_t *fetched_ms);
/* Closes the client's handles; the memory is released by their close callbacks. */
void ha_metadata_close(ha_metadata *m);

/* One fetch on a private loop, for the startup line: bounded by timeout_ms. */
int ha_metadata_fetch_once(const char *base_uri, uint64_t timeout_ms, ha_task_info *out, char *err,
                           size_t errlen);

#endif
