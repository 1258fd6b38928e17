/* rng.h: seeded GSL random streams, one per component.
 *
 * A stream is identified by (experiment seed, stream id); the same pair always
 * yields the same sequence, so components never share or perturb each other's
 * randomness. Never use rand() or wall-clock time in simulated state. */
#ifndef SIM_RNG_H
#define SIM_RNG_H

#include <stdint.h>

#include <gsl/gsl_rng.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Stream ids used by kvfleet's components (add new ones at the end). */
enum sim_rng_stream {
    SIM_RNG_ARRIVALS = 1, /* synthetic arrival times */
    SIM_RNG_LENGTHS = 2,  /* synthetic prompt/output lengths */
    SIM_RNG_SESSIONS = 3, /* session structure, think times */
    SIM_RNG_ROUTER = 4,   /* randomised routing */
    SIM_RNG_POLICY = 5,   /* randomised eviction */
    SIM_RNG_WEIGHTS = 6   /* random model weights (cpu/cuda backends) */
};

/* Creates a mt19937 stream seeded from (seed, stream); returns owned or NULL. */
gsl_rng *sim_rng_create(uint64_t seed, uint32_t stream);
/* Frees a stream; NULL is a no-op. */
void sim_rng_destroy(gsl_rng *r);

#ifdef __cplusplus
}
#endif
#endif /* SIM_RNG_H */
