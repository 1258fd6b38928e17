/* capacity.h: `kvfleet capacity`, the smallest fleet that meets every SLO.
 *
 * For each load scale and each TP degree it brackets the replica count by
 * doubling and then bisects, each point a full simulation; it never
 * assumes that more replicas always help: the size it reports is verified
 * to meet the SLOs and one replica fewer to miss them (walking down while
 * the smaller size also meets them). Points and answers go to SQLite
 * (docs/capacity.md) and the curve to gnuplot. */
#ifndef RT_CAPACITY_H
#define RT_CAPACITY_H

#include "err.h"
#include "metrics.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One SLO: a summary figure and its limit (latencies in s, reject as a fraction). */
typedef struct cap_slo {
    char name[32]; /* as written: ttft_p99, reject, ... */
    int field;     /* index into the figures cap_figure knows */
    double limit;
} cap_slo;

#define CAP_MAX_SLOS 8

typedef struct cap_slo_set {
    cap_slo slo[CAP_MAX_SLOS];
    int n;
    char text[256]; /* normalised, e.g. "ttft_p99=2s,tpot_p99=0.1s,reject=0.001" */
} cap_slo_set;

/* Parses "ttft_p99=2s,tpot_p99=100ms,reject=0.1%" into *out. Latency
 * figures: ttft_, tpot_, e2e_ with p50, p90 or p99 (units s, ms, us; bare
 * numbers are seconds); reject: a fraction or a percentage of requests.
 * Returns SIM_OK or SIM_EINVAL with *err naming the part (a figure given
 * twice included). */
int cap_slo_parse(const char *text, cap_slo_set *out, sim_err *err);
/* Whether a run's summary meets every SLO of the set (a figure that is
 * undefined, such as TTFT with no completed request, misses; but a TPOT
 * quantile undefined because no completed request has two output tokens
 * is met when any request completed). */
int cap_slo_met(const cap_slo_set *s, const met_summary *sum);

/* `kvfleet capacity`: argv[0] is "capacity". Returns an exit code. */
int rt_main_capacity(int argc, char **argv);

#ifdef __cplusplus
}
#endif
#endif /* RT_CAPACITY_H */
