/* num.h: small helpers shared across the tree: reading decimal numbers,
 * qsort comparators, and names in a list. */
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

/* The nanoseconds in one unit of a duration suffix (exact): ns, us, ms,
 * s, m, h, or "" (plain seconds); 0 for any other suffix. A value of x
 * units is x * unit ns, or x * unit / 1e9 seconds, which reads "40ms" as
 * the same double as "0.04". */
static inline double sim_duration_unit_ns(const char *unit) {
    static const struct {
        const char *unit;
        double ns;
    } units[] = {{"ns", 1.0}, {"us", 1e3},   {"ms", 1e6}, {"s", 1e9},
                 {"m", 60e9}, {"h", 3600e9}, {"", 1e9}};
    size_t i;
    for (i = 0; i < sizeof units / sizeof units[0]; i++)
        if (strcmp(unit, units[i].unit) == 0)
            return units[i].ns;
    return 0.0;
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

/* 1 when name is exactly one of the names in list ("a, b, c"); an empty
 * name, or one holding the separator ("a, b"), is none of them. */
static inline int sim_name_in_list(const char *list, const char *name) {
    size_t len = strlen(name);
    const char *p = list;
    if (len == 0)
        return 0;
    for (;;) {
        const char *end = strstr(p, ", ");
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n == len && memcmp(p, name, len) == 0)
            return 1;
        if (end == NULL)
            return 0;
        p = end + 2;
    }
}

#endif /* SIM_NUM_H */
