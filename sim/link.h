/* link.h: one direction of a link shared fairly by concurrent transfers.
 *
 * A transfer of b bytes waits the link's latency, then moves its bytes at
 * an equal share of the bandwidth with every other transfer moving at the
 * same time (max-min fair sharing on a single link: all demands are
 * greedy, so the shares are equal). When a transfer starts or ends, the
 * others' rates change and so do their finish times: a transfer's finish is
 * known only up to the next start. The link advances lazily: link_advance()
 * settles everything up to a time. Transfers are identified by the handle
 * link_start() returns; a finished transfer's handle reports done. */
#ifndef SIM_LINK_H
#define SIM_LINK_H

#include <stdint.h>

#include "req.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct link link;

/* Creates a link of bw bytes/s (> 0); returns owned or NULL. */
link *link_create(double bw);
/* Frees a link; NULL is a no-op. */
void link_destroy(link *l);
/* Starts a transfer of bytes (> 0) at now (>= every earlier call's time)
 * whose bytes begin to move after latency_s; returns its handle (>= 0), or
 * -1 when out of memory. */
int64_t link_start(link *l, sim_time now, double bytes, double latency_s);
/* Transfers started and not finished (at the time the link was advanced to). */
int link_active(const link *l);
/* Settles the link up to now: transfers that finished by then are done. */
void link_advance(link *l, sim_time now);
/* Whether transfer h has finished by the time the link was advanced to. */
int link_done(const link *l, int64_t h);
/* When transfer h finishes if no other transfer starts (its time if done). */
sim_time link_finish(const link *l, int64_t h);
/* The earliest projected finish among unfinished transfers (SIM_TIME_MAX: none). */
sim_time link_next_finish(const link *l);
/* Seconds at least one transfer was in flight (latency included), up to
 * the time the link was advanced to. */
double link_busy_s(const link *l);

#ifdef __cplusplus
}
#endif
#endif /* SIM_LINK_H */
