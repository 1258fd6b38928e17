/* query.h: `kvfleet query`: one row per sweep point (or per run) from a results file. */
#ifndef RT_QUERY_H
#define RT_QUERY_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* `kvfleet query DB [--sweep ID] [--csv] [--columns A,B] [--all-columns]`; argv[0] is "query".
 * Returns an exit code (docs/cli.md). */
int rt_main_query(int argc, char **argv);

/* The half-width of the 95% confidence interval of the mean of v[0..n)
 * (Student t, n - 1 degrees of freedom); NAN with fewer than 2 values.
 * Shared by query and plot. */
double rt_ci95(const double *v, size_t n);

#ifdef __cplusplus
}
#endif
#endif /* RT_QUERY_H */
