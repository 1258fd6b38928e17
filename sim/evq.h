/* evq.h: the event queue, a binary heap ordered by (time, class, seq).
 *
 * seq is a counter incremented on every push, so events with equal time and
 * class run in the order they were scheduled (FIFO, as libuv timers), or a
 * tie the caller gives (evq_push_tie). The
 * class lets arrivals at time t be seen by a scheduling decision at the same
 * t whatever order they were pushed in (see engine.c). Scheduling into the
 * past is a broken invariant (asserted). The heap grows geometrically; in
 * steady state push and pop never allocate. */
#ifndef SIM_EVQ_H
#define SIM_EVQ_H

#include <stddef.h>
#include <stdint.h>

#include "req.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct evq_ev {
    sim_time t;   /* when, ns */
    uint64_t key; /* class << 56 | seq: the tie-break order */
    int32_t type; /* engine-defined event type */
    int32_t a;    /* engine-defined (e.g. replica index) */
    int64_t b;    /* engine-defined (e.g. generation) */
    void *p;      /* engine-defined payload, borrowed */
} evq_ev;

typedef struct evq evq;

/* Creates an empty queue with room for cap events; returns owned or NULL. */
evq *evq_create(size_t cap);
/* Frees the queue; NULL is a no-op. */
void evq_destroy(evq *q);
/* Schedules an event (class 0..255, lower first at equal time); SIM_OK or SIM_ENOMEM. */
int evq_push(evq *q, sim_time t, unsigned cls, int32_t type, int32_t a, int64_t b, void *p);
/* The largest tie of evq_push_tie (and the seq counter's wrap mask). */
#define EVQ_TIE_MAX ((UINT64_C(1) << 56) - 1)
/* evq_push with the caller's tie-break instead of seq: events of equal time
 * and class run in order of tie, whenever they were pushed (a class should
 * use one kind of push only). */
int evq_push_tie(evq *q, sim_time t, unsigned cls, uint64_t tie, int32_t type, int32_t a, int64_t b,
                 void *p);
/* Removes the next event into *out and advances now; returns 1, or 0 when empty. */
int evq_pop(evq *q, evq_ev *out);
/* Time of the next event, SIM_TIME_MAX when empty. */
sim_time evq_peek_time(const evq *q);
/* Events queued. */
size_t evq_size(const evq *q);
/* Time of the last popped event (0 before the first). */
sim_time evq_now(const evq *q);
/* Events popped so far. */
uint64_t evq_popped(const evq *q);

#ifdef __cplusplus
}
#endif
#endif /* SIM_EVQ_H */
