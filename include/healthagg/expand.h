/* expand.h - ${VAR} in secret-bearing config values (gRPC metadata, HTTP headers): expanded from
 * the environment once, when the config loads, so a secret that ECS injects into the container's
 * environment (task definition `secrets`) reaches a check without ever being written in the
 * config. The expanded values are secrets: whoever shows a config shows "<redacted>" instead. */
#ifndef HEALTHAGG_EXPAND_H
#define HEALTHAGG_EXPAND_H

#include <stddef.h>

/* Returns a malloc'ed copy of `in` with every ${NAME} (NAME: letters, digits, '_', not starting
 * with a digit) replaced by the variable's value and "$$" by "$"; any other '$' is kept. NULL
 * with "PATH: ..." in err when a variable is unset, a "${" is not closed or a name is invalid,
 * or when out of memory. */
char *ha_expand_env(const char *in, const char *path, char *err, size_t errlen);

#endif
