/* plot.h: `kvfleet plot`: gnuplot figures drawn from a results file.
 *
 * Kinds: latency-load, hit-rate, capacity, timeline, roofline, validation
 * (docs/plots.md says what each draws and from which tables). The format
 * comes from the output's extension (.png: pngcairo, .svg: svg). */
#ifndef RT_PLOT_H
#define RT_PLOT_H

#ifdef __cplusplus
extern "C" {
#endif

/* `kvfleet plot DB --kind K -o FILE [...]`; argv[0] is "plot". Returns the
 * exit code: 0 ok, 1 bad input (an unknown kind, a file lacking the rows
 * the kind needs, -o or --script naming the results file), 2 usage,
 * 3 gnuplot missing or failing, or a database error. */
int rt_main_plot(int argc, char **argv);
/* 0 when out can name a figure (.png or .svg, no control character, a
 * writable folder); else prints why as `kvfleet CMD: OPT: ...` and returns
 * the exit code, 2 for the suffix and 1 for the rest. */
int rt_plot_check_output(const char *cmd, const char *opt, const char *out);

#ifdef __cplusplus
}
#endif
#endif /* RT_PLOT_H */
