/* fileio.c: replacing a file whole (fileio.h). */
#include "config.h"
#include "fileio.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int sim_replace_open(sim_replace *r, const char *path, sim_err *err) {
    struct stat st;
    int plain;
    memset(r, 0, sizeof *r);
    if (lstat(path, &st) == 0) {
        plain = S_ISREG(st.st_mode);
        if (plain)
            r->mode = (unsigned)(st.st_mode & 07777);
    } else {
        plain = errno == ENOENT;
    }
    if (!plain) { /* a link, a device, a pipe: in place */
        if ((r->f = fopen(path, "w")) == NULL) {
            sim_err_set(err, path, 0, 0, "cannot write: %s", strerror(errno));
            return SIM_EIO;
        }
        return SIM_OK;
    }
    if ((size_t)snprintf(r->tmp, sizeof r->tmp, "%s.tmp", path) >= sizeof r->tmp) {
        sim_err_set(err, path, 0, 0, "cannot write: path too long");
        return SIM_EIO;
    }
    if ((r->f = fopen(r->tmp, "w")) == NULL) {
        sim_err_set(err, path, 0, 0, "cannot write: %s: %s", r->tmp, strerror(errno));
        return SIM_EIO;
    }
    r->via_tmp = 1;
    return SIM_OK;
}

int sim_replace_close(sim_replace *r, const char *path, int ok, sim_err *err) {
    int bad;
    if (r->f == NULL)
        return SIM_EIO;
    bad = ferror(r->f) != 0;
    bad |= fclose(r->f) != 0;
    r->f = NULL;
    if (bad && err != NULL)
        sim_err_set(err, path, 0, 0, "write failed");
    if (r->via_tmp) {
        if (ok && !bad) {
            if (r->mode != 0)
                (void)chmod(r->tmp, (mode_t)r->mode);
            if (rename(r->tmp, path) == 0)
                return SIM_OK;
            if (err != NULL)
                sim_err_set(err, path, 0, 0, "cannot write: %s", strerror(errno));
            bad = 1;
        }
        (void)remove(r->tmp);
    }
    return ok && !bad ? SIM_OK : SIM_EIO;
}

void sim_dirname(const char *path, char *buf, size_t n) {
    const char *slash = strrchr(path, '/');
    if (slash == NULL)
        snprintf(buf, n, ".");
    else if (slash == path)
        snprintf(buf, n, "/");
    else
        snprintf(buf, n, "%.*s", (int)(slash - path), path);
}

const char *sim_tmpdir(void) {
    const char *dir = getenv("TMPDIR");
    return dir != NULL && dir[0] != '\0' ? dir : "/tmp";
}

enum sim_dir_fail sim_dir_ready(const char *dir) {
    struct stat st;
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return SIM_DIR_MKDIR;
    if (stat(dir, &st) != 0)
        return SIM_DIR_STAT;
    if (!S_ISDIR(st.st_mode))
        return SIM_DIR_NOT_DIR;
    if (access(dir, W_OK | X_OK) != 0)
        return SIM_DIR_NOT_WRITABLE;
    return SIM_DIR_OK;
}
