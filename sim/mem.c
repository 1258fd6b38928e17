/* mem.c: accounted allocation with fault injection (see mem.h).
 *
 * Each block carries a 16-byte header holding its size, so frees can be
 * accounted without a side table. Alignment stays 16 bytes. */
#include "config.h"
#include "mem.h"

#include <stdlib.h>
#include <string.h>

#define HDR 16

static size_t mem_cur;
static size_t mem_peak;
static uint64_t mem_n;
static uint64_t mem_fail_k;

static int should_fail(void) {
    mem_n++;
    if (mem_fail_k == 0)
        return 0;
    if (--mem_fail_k == 0)
        return 1;
    return 0;
}

static void account(size_t add, size_t sub) {
    mem_cur = mem_cur + add - sub;
    if (mem_cur > mem_peak)
        mem_peak = mem_cur;
}

void *sim_malloc(size_t n) {
    unsigned char *p;
    if (n > SIZE_MAX - HDR || should_fail())
        return NULL;
    p = malloc(n + HDR);
    if (p == NULL)
        return NULL;
    memcpy(p, &n, sizeof n);
    account(n, 0);
    return p + HDR;
}

void *sim_calloc(size_t n, size_t size) {
    void *p;
    if (size != 0 && n > SIZE_MAX / size)
        return NULL;
    p = sim_malloc(n * size);
    if (p)
        memset(p, 0, n * size);
    return p;
}

void *sim_realloc(void *p, size_t n) {
    unsigned char *q;
    size_t old;
    if (p == NULL)
        return sim_malloc(n);
    if (n > SIZE_MAX - HDR || should_fail())
        return NULL;
    q = (unsigned char *)p - HDR;
    memcpy(&old, q, sizeof old);
    q = realloc(q, n + HDR);
    if (q == NULL)
        return NULL;
    memcpy(q, &n, sizeof n);
    account(n, old);
    return q + HDR;
}

void sim_free(void *p) {
    unsigned char *q;
    size_t old;
    if (p == NULL)
        return;
    q = (unsigned char *)p - HDR;
    memcpy(&old, q, sizeof old);
    account(0, old);
    free(q);
}

char *sim_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = sim_malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

size_t sim_mem_current(void) {
    return mem_cur;
}

size_t sim_mem_peak(void) {
    return mem_peak;
}

size_t sim_mem_peak_reset(void) {
    mem_peak = mem_cur;
    return mem_cur;
}

void sim_mem_fail_at(uint64_t k) {
    mem_fail_k = k;
}

uint64_t sim_mem_count(void) {
    return mem_n;
}
