/* secrets.h - values a check sends but never shows: name/value maps (http `headers`) whose
 * values may hold `${VAR}` (expanded at load by ha_expand_env, expand.h), and their redaction.
 *
 * Every value of a map is a secret: describe() shows it as "<redacted>", error messages name
 * the key but never the value, and ha_secret_scrub() replaces any of the values (or of the
 * variables' values that went into them) found in a probe's reason, for targets that echo a
 * request header into their body. Pure functions, no libuv: shared by every check type. */
#ifndef HEALTHAGG_SECRETS_H
#define HEALTHAGG_SECRETS_H

#include <cJSON.h>
#include <stdbool.h>
#include <stddef.h>

#define HA_REDACTED "<redacted>"
#define HA_SECRET_MAX_ITEMS 32   /* entries of one map */
#define HA_SECRET_NAME_MAX 128   /* bytes of a name */
#define HA_SECRET_VALUE_MAX 8192 /* bytes of a value, after expansion */
#define HA_SECRET_SCRUB_MIN 4    /* shorter values are not scrubbed from reasons ("1", "on") */

/* Checks a name; on failure writes why (without the value) and returns false. */
typedef bool (*ha_secret_name_rule)(const char *name, char *why, size_t whylen);
/* HTTP field names (RFC 9110 token: letters, digits and !#$%&'*+-.^_`|~). */
bool ha_http_field_name_ok(const char *name, char *why, size_t whylen);
/* HTTP field values: no control characters but tab (so no CR or LF), at most
 * HA_SECRET_VALUE_MAX bytes. On failure `why` says which byte offset, never the value. */
bool ha_http_field_value_ok(const char *value, char *why, size_t whylen);

typedef struct ha_secret_pair {
    char *name;  /* owned, as configured */
    char *value; /* owned, expanded */
} ha_secret_pair;

typedef struct ha_secret_map {
    ha_secret_pair *items; /* owned, in config order */
    size_t n;
    char **scrub; /* owned: strings to hide in reasons (values, and the variables' values) */
    size_t n_scrub;
} ha_secret_map;

/* Parses a JSON object of name -> string (each ${VAR}-expanded) at `path` into *out (zeroed
 * first). Names are checked with `name_ok` (NULL: ha_http_field_name_ok) and must be unique
 * ignoring case; values with ha_http_field_value_ok. Errors: "PATH.NAME: ..." without the
 * value. Returns 0 or -1 (*out is then released). */
int ha_secret_map_parse(const cJSON *obj, const char *path, ha_secret_name_rule name_ok,
                        ha_secret_map *out, char *err, size_t errlen);
void ha_secret_map_free(ha_secret_map *m);
/* The entry named `name` (ASCII case-insensitive), or NULL. */
const ha_secret_pair *ha_secret_map_get(const ha_secret_map *m, const char *name);
/* {"NAME": "<redacted>", ...} as `key` of `out` (nothing when the map is empty). */
void ha_secret_map_describe(const ha_secret_map *m, const char *key, cJSON *out);
/* Replaces, in the NUL-terminated `text` (buffer of `cap` bytes), every occurrence of a scrub
 * string of the map by "<redacted>", truncating on a character boundary if the result does not
 * fit. Returns the number of replacements. */
size_t ha_secret_scrub(const ha_secret_map *m, char *text, size_t cap);

#endif
