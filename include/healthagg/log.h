/* log.h - JSON-lines events on stdout: one object per line, flushed at once.
 *
 * Every line has "time" (RFC 3339 UTC), "level" and "event"; callers add fields to the
 * object between ha_log_begin() and ha_log_emit(). stdout is what `docker logs` and the
 * awslogs driver collect, so this is the log that says why a task was marked unhealthy. */
#ifndef HEALTHAGG_LOG_H
#define HEALTHAGG_LOG_H

#include <cJSON.h>

/* Returns a new object with time/level/event set, or NULL when out of memory (emit handles it). */
cJSON *ha_log_begin(const char *level, const char *event);
/* Writes the object as one line and frees it. */
void ha_log_emit(cJSON *obj);

#endif
