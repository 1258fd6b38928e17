/* num.h: small numeric helpers shared across the tree: reading decimal
 * numbers, and qsort comparators. */
#ifndef SIM_NUM_H
#define SIM_NUM_H

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* strtod for decimal text only. strtod also reads hexadecimal ("0x10" is
 * 16), "nan" and "inf"; here those are not numbers: *end = s (nothing read)
 * and 0 is returned. Otherwise as strtod, errno (ERANGE) included: leading
 * blanks and a sign are allowed, a suffix is left at *end. */
static inline double sim_strtod(const char *s, char **end) {
    const char *p = s;
    while (isspace((unsigned char)*p))
        p++;
    if (*p == '+' || *p == '-')
        p++;
    if (!(isdigit((unsigned char)*p) || (*p == '.' && isdigit((unsigned char)p[1]))) ||
        (p[0] == '0' && (p[1] == 'x' || p[1] == 'X'))) {
        *end = (char *)s;
        return 0.0;
    }
    return strtod(s, end);
}

/* Ascending doubles; NaN compares equal to everything (callers sort finite values). */
static inline int sim_cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Strings (an array of char *) in byte order. */
static inline int sim_cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

#endif /* SIM_NUM_H */
