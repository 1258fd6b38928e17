/* collective_cmd.h: `kvfleet collective`, the predicted time of one
 * collective, and the fit of its calibration (docs/collectives.md). */
#ifndef RT_COLLECTIVE_CMD_H
#define RT_COLLECTIVE_CMD_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Runs `kvfleet collective` (argv[0] is "collective"); returns the exit
 * code: 0, 1 bad input, 2 usage, 3 runtime failure. */
int rt_main_collective(int argc, char **argv);
/* Parses a byte count with an optional suffix (K, M, G, T and KiB.. are
 * powers of 1024, KB.. powers of 1000), decimal only; SIM_OK (*out a whole
 * number from 1 to 2^63-1), SIM_EPARSE (not of that form) or SIM_EINVAL
 * (of that form, out of range: below 1, not whole, beyond 64 bits). */
int rt_parse_bytes(const char *s, int64_t *out);

#ifdef __cplusplus
}
#endif
#endif /* RT_COLLECTIVE_CMD_H */
