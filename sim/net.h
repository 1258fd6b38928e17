/* net.h: a network of one-way links shared max-min fairly by transfers.
 *
 * A link is one direction of a physical link (an NVLink port, a NIC, a
 * PCIe x16): a full-duplex link is two net links. A transfer moves a number
 * of bytes over a path of one or more links; it first waits its latency,
 * then moves at a rate given by max-min fairness (progressive filling) over
 * every transfer moving at the same time: no link carries more than its
 * bandwidth, and no transfer can go faster without slowing one that is
 * already no faster. On a single link this is an equal split (sim/link.h);
 * with several links a transfer held back by one bottleneck leaves its
 * unused share to the others elsewhere.
 *
 * Rates change only when a transfer starts moving (its latency ends) or
 * finishes, so a transfer's projected finish moves when others start or
 * end. The network advances lazily: net_advance() settles everything up to
 * a time; net_next_finish() says when the next transfer will finish if
 * nothing else starts, which is when a simulator wakes it next. Times are
 * sim_time (integer ns); a finish is rounded up to the next ns.
 *
 * Cost: O(k x (moving transfers x path length + links touched)) per change,
 * where k is the number of distinct bottleneck levels (1 when every
 * transfer shares one bottleneck). Memory grows only in net_link_add() and
 * net_start(); advancing and querying never allocate. */
#ifndef SIM_NET_H
#define SIM_NET_H

#include <stdint.h>

#include "req.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Longest path a transfer may take, in links. */
#define NET_PATH_MAX 8

typedef struct net net;

/* Creates an empty network; returns owned, or NULL when out of memory. */
net *net_create(void);
/* Frees a network; NULL is a no-op. */
void net_destroy(net *n);
/* Adds a link of bw bytes/s (> 0); *id is its index (0, 1, ...). */
int net_link_add(net *n, double bw, int *id /* OUT */);
/* Links added so far. */
int net_n_links(const net *n);
/* Starts bytes (> 0) over path[0..n_hops) at now (>= the last time given),
 * moving after latency_s (>= 0); returns a handle >= 0, or a negative
 * SIM_E* code (SIM_EINVAL for a bad path or size, SIM_ENOMEM). */
int64_t net_start(net *n, sim_time now, const int *path, int n_hops, double bytes,
                  double latency_s);
/* Settles the network up to now: transfers that finished by then are done. */
void net_advance(net *n, sim_time now);
/* Whether transfer h had finished by the time the network was advanced to. */
int net_done(const net *n, int64_t h);
/* Transfers started and not finished. */
int net_active(const net *n);
/* Current rate of transfer h, bytes/s (0 while in its latency or done). */
double net_rate(const net *n, int64_t h);
/* The earliest finish among unfinished transfers if none starts, or
 * SIM_TIME_MAX when none is unfinished. */
sim_time net_next_finish(net *n);
/* When transfer h finishes if none starts (the settled time if done). */
sim_time net_finish(net *n, int64_t h);
/* Transfers started so far (a counter: a change means projections moved). */
int64_t net_started(const net *n);
/* Seconds link id carried at least one moving transfer, up to the settled time. */
double net_link_busy_s(const net *n, int id);
/* Bytes link id carried up to the settled time. */
double net_link_bytes(const net *n, int id);

#ifdef __cplusplus
}
#endif
#endif /* SIM_NET_H */
