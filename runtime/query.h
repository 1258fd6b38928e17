/* query.h: `kvfleet query`: one row per sweep point (or per run) from a results file. */
#ifndef RT_QUERY_H
#define RT_QUERY_H

#ifdef __cplusplus
extern "C" {
#endif

/* `kvfleet query DB [--sweep ID] [--csv] [--columns A,B] [--all-columns]`; argv[0] is "query".
 * Returns an exit code (docs/cli.md). */
int rt_main_query(int argc, char **argv);

#ifdef __cplusplus
}
#endif
#endif /* RT_QUERY_H */
