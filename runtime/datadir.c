/* datadir.c: locating data/ (see datadir.h). */
#include "config.h"
#include "datadir.h"

#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>

static int is_dir(const char *p) {
    struct stat st;
    return p && p[0] && stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* p's canonical path (a build tree's "/x/b/../data" is "/x/data", as
 * results then store it), or p itself where it cannot be resolved. */
static const char *canonical(const char *p) {
    static char buf[PATH_MAX];
    return realpath(p, buf) != NULL ? buf : p;
}

const char *rt_datadir(void) {
    const char *env = getenv("KVFLEET_DATA");
    if (is_dir(env))
        return canonical(env);
    if (is_dir(KV_SRCDATADIR))
        return canonical(KV_SRCDATADIR);
    return KV_PKGDATADIR;
}
