/* mem.h: every heap allocation goes through here.
 *
 * Byte accounting (current and peak, reported as a run metric) and fault
 * injection for tests (the k-th allocation fails). The counters are the one
 * piece of process-wide mutable state in kvfleet; the simulator is
 * single-threaded and sweeps use processes, so no locking is needed. */
#ifndef SIM_MEM_H
#define SIM_MEM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* malloc with accounting; NULL on failure (or an injected fault). */
void *sim_malloc(size_t n);
/* calloc with overflow check and accounting; NULL on failure. */
void *sim_calloc(size_t n, size_t size);
/* realloc with accounting; on failure returns NULL and p stays valid. */
void *sim_realloc(void *p, size_t n);
/* free; NULL is a no-op. */
void sim_free(void *p);
/* strdup through sim_malloc; returns owned or NULL. */
char *sim_strdup(const char *s);

/* Bytes currently allocated and the peak since start (or the last reset). */
size_t sim_mem_current(void);
size_t sim_mem_peak(void);
/* Starts a new peak from the bytes allocated now, and returns them: a
 * run's own peak is sim_mem_peak() less that, whatever ran before it in
 * the process (validate, capacity and sweeps make several runs). */
size_t sim_mem_peak_reset(void);
/* Makes the k-th allocation from now fail (k >= 1); 0 disables. */
void sim_mem_fail_at(uint64_t k);
/* Number of allocations made since start. */
uint64_t sim_mem_count(void);

#define SIM_NEW(T)          ((T *)sim_calloc(1, sizeof(T)))
#define SIM_NEW_ARRAY(T, n) ((T *)sim_calloc((n), sizeof(T)))
/* Frees and sets the pointer to NULL. */
#define SIM_FREE(p)                                                                                \
    do {                                                                                           \
        sim_free(p);                                                                               \
        (p) = NULL;                                                                                \
    } while (0)

#ifdef __cplusplus
}
#endif
#endif /* SIM_MEM_H */
