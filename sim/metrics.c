/* metrics.c: reject reason names, summary initialisation and quantiles. */
#include "config.h"
#include "metrics.h"

#include <math.h>

#include <gsl/gsl_statistics_double.h>

#include "engine.h"

const char *met_reject_name(enum met_reject r) {
    switch (r) {
#define MET_XX_CASE(id, name)                                                                      \
    case MET_REJECT_##id:                                                                          \
        return name;
        MET_REJECT_MAP(MET_XX_CASE)
#undef MET_XX_CASE
        default:
            break;
    }
    return "unknown";
}

void met_summary_init(met_summary *s) {
#define MET_XX_INIT_I(name)     s->name = 0;
#define MET_XX_INIT_D(name)     s->name = NAN;
#define MET_XX_INIT(name, kind) MET_XX_INIT_##kind(name)
    MET_SUMMARY_MAP(MET_XX_INIT)
#undef MET_XX_INIT
#undef MET_XX_INIT_I
#undef MET_XX_INIT_D
}

double met_quantile_sorted(const double *v, size_t n, double q) {
    if (n == 0)
        return NAN;
    return gsl_stats_quantile_from_sorted_data(v, 1, n, q);
}
