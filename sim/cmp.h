/* cmp.h: qsort comparators shared across the tree. */
#ifndef SIM_CMP_H
#define SIM_CMP_H

#include <string.h>

/* Ascending doubles; NaN compares equal to everything (callers sort finite values). */
static inline int sim_cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Strings (an array of char *) in byte order. */
static inline int sim_cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

#endif /* SIM_CMP_H */
