/* json_cond.h - `expect_json`: conditions on a JSON body, each naming a value by a path.
 *
 * Path syntax: `$` (the whole document), then any number of `.name` (object member; a name is
 * any run of characters but `.`, `[`, `]`, space and control characters), `["name"]` (any
 * member name, with \" and \\ escapes) and `[N]` (array element, from 0; `[-1]` is the last).
 * E.g. `$.status`, `$.checks[0].state`, `$["db.primary"].up`, `$.items[-1]`.
 *
 * A condition is {"path": P, OP: V} with OP one of equals / not_equals (any JSON value, compared
 * by type and value: 1 equals 1.0, "1" does not), lt / le / gt / ge (V a number; the value
 * must be a number) or exists (true or false). Evaluation parses the body once with cJSON and
 * checks the conditions in order; the first that fails gives the reason:
 *   $.status is "DOWN", want "UP"
 *   $.db.latency_ms is 340, want < 100
 *   $.x does not exist
 *   body is not JSON: invalid at byte 12 of 40 (near "}...")
 * Pure functions, no libuv: used by the http check type and by the fuzz target. */
#ifndef HEALTHAGG_JSON_COND_H
#define HEALTHAGG_JSON_COND_H

#include <cJSON.h>
#include <stdbool.h>
#include <stddef.h>

#define HA_JSON_PATH_MAX_SEGMENTS 32
#define HA_JSON_PATH_MAX_LEN 512
#define HA_JSON_COND_MAX 32

typedef struct ha_json_segment {
    char *key;  /* member name (owned), or NULL for an array index */
    long index; /* array index; negative counts from the end */
} ha_json_segment;

typedef struct ha_json_path {
    ha_json_segment seg[HA_JSON_PATH_MAX_SEGMENTS];
    size_t n;
    char *text; /* as written, for reasons (owned) */
} ha_json_path;

typedef enum {
    HA_JSON_EQ,
    HA_JSON_NE,
    HA_JSON_LT,
    HA_JSON_LE,
    HA_JSON_GT,
    HA_JSON_GE,
    HA_JSON_EXISTS,
} ha_json_op;

typedef struct ha_json_cond {
    ha_json_path path;
    ha_json_op op;
    cJSON *want;     /* equals / not_equals: the value (owned) */
    double number;   /* lt / le / gt / ge */
    bool exists;     /* exists */
    char *want_text; /* the value as shown in reasons: "\"UP\"", "100" (owned) */
} ha_json_cond;

typedef struct ha_json_conds {
    ha_json_cond *items; /* owned */
    size_t n;
} ha_json_conds;

/* Parses a path. Returns 0, or -1 with a sentence (no field name) in err. *out owns memory
 * on success only; release it with ha_json_path_free. */
int ha_json_path_parse(const char *text, ha_json_path *out, char *err, size_t errlen);
void ha_json_path_free(ha_json_path *p);
/* The value at the path in doc, or NULL when it does not exist. */
const cJSON *ha_json_path_get(const ha_json_path *p, const cJSON *doc);

/* Parses the `expect_json` list found at `where` ("checks[0].expect_json"). Errors name the
 * element and key: "checks[0].expect_json[1].lt: expected a number, got a string". Returns 0
 * or -1 (*out is then empty). */
int ha_json_conds_parse(const cJSON *list, const char *where, ha_json_conds *out, char *err,
                        size_t errlen);
void ha_json_conds_free(ha_json_conds *c);
/* Adds the conditions, as configured, to a log object under `key`. */
void ha_json_conds_describe(const ha_json_conds *c, const char *key, cJSON *out);

/* Checks every condition against the body (len bytes, need not be NUL-terminated).
 * `truncated`: the body was cut at max_response_bytes (`cap`), which a parse error then says.
 * Returns true when all hold; else false with the reason in buf (valid UTF-8, one line). */
bool ha_json_conds_eval(const ha_json_conds *c, const char *body, size_t len, bool truncated,
                        size_t cap, char *buf, size_t buflen);

#endif
