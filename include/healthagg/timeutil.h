/* timeutil.h - wall-clock time for logs and health+json. Monotonic time comes from libuv. */
#ifndef HEALTHAGG_TIMEUTIL_H
#define HEALTHAGG_TIMEUTIL_H

#include <stddef.h>
#include <stdint.h>

#define HA_RFC3339_MAX 32

uint64_t ha_wall_ms(void);
/* "2026-11-24T06:30:00.123Z" */
void ha_format_rfc3339(uint64_t wall_ms, char *buf, size_t len);

#endif
