/* datadir.c: locating data/ (see datadir.h). */
#include "config.h"
#include "datadir.h"

#include <stdlib.h>
#include <sys/stat.h>

static int is_dir(const char *p) {
    struct stat st;
    return p && p[0] && stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

const char *rt_datadir(void) {
    const char *env = getenv("KVFLEET_DATA");
    if (is_dir(env))
        return env;
    if (is_dir(KV_SRCDATADIR))
        return KV_SRCDATADIR;
    return KV_PKGDATADIR;
}
