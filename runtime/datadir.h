/* datadir.h: where kvfleet finds data/ (presets, traces, calibrations). */
#ifndef RT_DATADIR_H
#define RT_DATADIR_H

#ifdef __cplusplus
extern "C" {
#endif

/* The data folder: $KVFLEET_DATA if set, else the source tree's data/ (a
 * build-tree binary), else the installed $(pkgdatadir); its canonical
 * path (no '.', '..' or links) where it exists. Borrowed, static. */
const char *rt_datadir(void);

#ifdef __cplusplus
}
#endif
#endif /* RT_DATADIR_H */
