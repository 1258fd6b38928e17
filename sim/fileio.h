/* fileio.h: replacing a file whole. A new or regular file is written as
 * PATH.tmp and renamed over PATH once complete, so that a failed write
 * never leaves a truncated file where a good one was (nor a partial one
 * that looks whole); a link, a device such as /dev/stdout or a pipe is
 * written in place, as it is. */
#ifndef SIM_FILEIO_H
#define SIM_FILEIO_H

#include <stdio.h>

#include "err.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A file being replaced (sim_replace_open .. sim_replace_close). */
typedef struct sim_replace {
    FILE *f;        /* where to write */
    char tmp[4096]; /* PATH.tmp, when via_tmp */
    int via_tmp;    /* 1: f is PATH.tmp, renamed over PATH at the close */
    unsigned mode;  /* the permissions of the file replaced (0: none was there) */
} sim_replace;

/* Opens path for replacing; SIM_OK, or SIM_EIO with *err set ("cannot
 * write: ...") and nothing created. A regular path whose PATH.tmp cannot
 * be made fails rather than being written in place. */
int sim_replace_open(sim_replace *r, const char *path, sim_err *err);
/* Closes r: with ok and no write error, PATH.tmp takes the replaced
 * file's permissions and is renamed over path (SIM_OK); otherwise PATH.tmp
 * is removed, path left as it was, and SIM_EIO returned with *err set
 * when the failure was the write's (ok = 0 alone returns SIM_EIO without
 * touching *err). */
int sim_replace_close(sim_replace *r, const char *path, int ok, sim_err *err);

/* Where temporary files go: $TMPDIR when set and not empty, else /tmp. */
const char *sim_tmpdir(void);

/* The folder part of path into buf (n bytes): "." for a bare name, "/" for
 * a file in the root, else everything before the last '/'. */
void sim_dirname(const char *path, char *buf, size_t n);

/* Makes the folder dir (one level) unless it exists, then checks that it
 * is a folder this process may write in. The step that failed, for the
 * caller's message (errno says why, but for SIM_DIR_NOT_DIR), or 0. */
enum sim_dir_fail {
    SIM_DIR_OK = 0,
    SIM_DIR_MKDIR,
    SIM_DIR_STAT,
    SIM_DIR_NOT_DIR,
    SIM_DIR_NOT_WRITABLE
};
enum sim_dir_fail sim_dir_ready(const char *dir);

#ifdef __cplusplus
}
#endif
#endif /* SIM_FILEIO_H */
