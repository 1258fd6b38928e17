/* rng.c: seeded GSL streams (see rng.h). The seed for a stream is a
 * splitmix64 mix of (seed, stream id), folded to the 32 bits gsl_rng_set
 * uses for mt19937. */
#include "config.h"
#include "rng.h"

gsl_rng *sim_rng_create(uint64_t seed, uint32_t stream) {
    uint64_t z = seed + 0x9e3779b97f4a7c15ULL * (uint64_t)(stream + 1);
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    if (r == NULL)
        return NULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    gsl_rng_set(r, (unsigned long)((z ^ (z >> 32)) & 0xffffffffUL) | 1UL);
    return r;
}

void sim_rng_destroy(gsl_rng *r) {
    if (r)
        gsl_rng_free(r);
}
