/* json_util.c: jansson helpers (see json_util.h).
 *
 * Configs are small (a model config.json is about 1 KB, a GPU preset about
 * 4 KB) and read once per run, so everything here favours clear messages
 * over speed: a file is read whole, parsed whole, and fields are looked up
 * by key. The only allocations made through sim_malloc are the file buffer
 * and the preset list; both are freed on every path.
 *
 * Syntax errors keep jansson's line and column. jansson words them as
 * "A expected near 'B'"; they are rewritten into the kvfleet form
 * "syntax: expected A, got 'B'" when they have that shape. */
#include "config.h"
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* opendir, stat */
#endif
#include "json_util.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mem.h"
#include "num.h"

/* ---- files ---- */

/* The JSON value at path (json_util.h): a folder is refused by name, since
 * jansson would read it as an empty file. */
json_t *sim_json_load_path(const char *path, const char *what, int *rc, sim_err *err) {
    const char *sep = what[0] ? ": " : "";
    json_error_t je;
    struct stat st;
    json_t *o;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) { /* jansson reads it as empty */
        sim_err_set(err, path, 0, 0, "%s%sexpected a file, got a folder", what, sep);
        *rc = SIM_EINVAL;
        return NULL;
    }
    o = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (o == NULL) {
        sim_err_set(err, path, je.line > 0 ? je.line : 0, je.column > 0 ? je.column : 0, "%s%s%s",
                    what, sep, je.text);
        *rc = access(path, R_OK) == 0 ? SIM_EPARSE : SIM_ENOENT;
    }
    return o;
}

/* Reads path whole. The buffer doubles from 4 KiB, so a pipe works too;
 * the text is NUL-terminated and *out_len excludes the NUL. Returns SIM_OK,
 * SIM_ENOENT (no such file), SIM_EIO (other open or read failures) or
 * SIM_ENOMEM. On failure *out_text is NULL. */
int sim_json_read_file(const char *path, char **out_text, size_t *out_len, sim_err *err) {
    FILE *f;
    char *buf = NULL, *nb;
    size_t cap = 0, len = 0, got;
    int rc, e;

    *out_text = NULL;
    if (out_len)
        *out_len = 0;
    f = fopen(path, "rb");
    if (f == NULL) {
        e = errno;
        sim_err_set(err, path, 0, 0, "file: expected a readable file, got '%s'", strerror(e));
        /* a path that names no readable file is bad input; only a failing
         * device is a runtime error */
        return e == ENOENT                                                ? SIM_ENOENT
               : e == EACCES || e == EISDIR || e == ENOTDIR || e == ELOOP ? SIM_EINVAL
                                                                          : SIM_EIO;
    }
    for (;;) {
        if (cap - len < 2) {
            size_t ncap = cap ? cap * 2 : 4096;
            if (ncap < cap) {
                sim_err_set(err, path, 0, 0, "file: expected a file that fits in memory");
                rc = SIM_ENOMEM;
                goto fail;
            }
            nb = sim_realloc(buf, ncap);
            if (nb == NULL) {
                sim_err_set(err, path, 0, 0, "file: out of memory");
                rc = SIM_ENOMEM;
                goto fail;
            }
            buf = nb;
            cap = ncap;
        }
        got = fread(buf + len, 1, cap - len - 1, f);
        len += got;
        if (got == 0)
            break;
    }
    if (ferror(f)) {
        e = errno;
        if (e == EISDIR) { /* fopen opens a folder; reading it fails */
            sim_err_set(err, path, 0, 0, "file: expected a file, got a folder");
            rc = SIM_EINVAL;
            goto fail;
        }
        sim_err_set(err, path, 0, 0, "file: expected a readable file, got '%s'",
                    e ? strerror(e) : "read error");
        rc = SIM_EIO;
        goto fail;
    }
    fclose(f);
    buf[len] = '\0';
    *out_text = buf;
    if (out_len)
        *out_len = len;
    return SIM_OK;

fail:
    fclose(f);
    sim_free(buf);
    return rc;
}

/* Turns jansson's "A expected near 'B'" (or "... near end of file") into
 * "syntax: expected A, got 'B'"; other texts become "syntax: TEXT". */
static void set_syntax_error(sim_err *err, const char *src, const json_error_t *je) {
    static const char sep[] = " expected near ";
    const char *t = je->text;
    const char *p = strstr(t, sep);
    long line = je->line > 0 ? (long)je->line : 0;
    int col = je->column > 0 ? je->column : 0;

    if (p != NULL)
        sim_err_set(err, src, line, col, "syntax: expected %.*s, got %s", (int)(p - t), t,
                    p + sizeof sep - 1);
    else
        sim_err_set(err, src, line, col, "syntax: %s", t);
}

/* Parses text as one JSON object; duplicate keys are refused. On success
 * *out is a new reference the caller releases with json_decref. */
int sim_json_parse_object(const char *text, size_t len, const char *src, json_t **out,
                          sim_err *err) {
    json_error_t je;
    json_t *root;
    int rc;

    *out = NULL;
    root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (root == NULL) {
        if (json_error_code(&je) == json_error_out_of_memory) {
            sim_err_set(err, src, 0, 0, "json: out of memory");
            return SIM_ENOMEM;
        }
        set_syntax_error(err, src, &je);
        return SIM_EPARSE;
    }
    if (!json_is_object(root)) {
        rc = sim_json_err_value(err, src, "top level", "a JSON object", root, SIM_EPARSE);
        json_decref(root);
        return rc;
    }
    *out = root;
    return SIM_OK;
}

/* Reads path and parses it as a JSON object; errors carry path as src. */
int sim_json_load_object(const char *path, json_t **out, sim_err *err) {
    char *text;
    size_t len;
    int rc;

    *out = NULL;
    rc = sim_json_read_file(path, &text, &len, err);
    if (rc != SIM_OK)
        return rc;
    rc = sim_json_parse_object(text, len, path, out, err);
    sim_free(text);
    return rc;
}

/* ---- messages ---- */

/* Renders v compactly. json_dumpb writes the chunks that fit and skips the
 * rest, so the buffer is zeroed first and the written prefix is kept. */
void sim_json_render(const json_t *v, char *buf, size_t n) {
    size_t cap, need;

    if (n == 0)
        return;
    memset(buf, 0, n);
    if (v == NULL) {
        snprintf(buf, n, "nothing");
        return;
    }
    if (n < 5) {
        buf[0] = '\0';
        return;
    }
    cap = n - 4; /* room for "..." and the NUL */
    need = json_dumpb(v, buf, cap, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));
    if (need == 0) {
        snprintf(buf, n, "?");
        return;
    }
    if (need <= cap) {
        buf[need] = '\0';
        return;
    }
    if (json_is_string(v)) {
        /* A string is dumped as one chunk, so nothing of it fit: show its
         * raw head instead, cut on a UTF-8 character boundary. */
        const char *s = json_string_value(v);
        size_t k = strlen(s);
        if (k > cap - 1)
            k = cap - 1;
        while (k > 0 && ((unsigned char)s[k] & 0xc0) == 0x80)
            k--;
        snprintf(buf, n, "\"%.*s...", (int)k, s);
        return;
    }
    buf[cap] = '\0';
    strcat(buf, "...");
}

/* Fills *err with "key: expected WHAT, got 'V'" and returns code, so callers
 * can write `return sim_json_err_value(...)`. */
int sim_json_err_value(sim_err *err, const char *src, const char *key, const char *what,
                       const json_t *v, int code) {
    char val[SIM_JSON_RENDER_MAX];

    sim_json_render(v, val, sizeof val);
    sim_err_set(err, src, 0, 0, "%s: expected %s, got '%s'", key, what, val);
    return code;
}

/* ---- field getters ---- */

/* Finds key. Returns SIM_OK with *v set, 1 when the key is absent (or null)
 * and not required, or SIM_EPARSE when it is required. */
static int lookup(const json_t *obj, const char *key, unsigned flags, const char *what, json_t **v,
                  const char *src, sim_err *err) {
    *v = json_object_get(obj, key);
    if (*v != NULL && !json_is_null(*v))
        return SIM_OK;
    if (!(flags & SIM_JSON_REQUIRED))
        return 1;
    if (*v == NULL) {
        sim_err_set(err, src, 0, 0, "%s: expected %s, got nothing (missing key)", key, what);
        return SIM_EPARSE;
    }
    return sim_json_err_value(err, src, key, what, *v, SIM_EPARSE);
}

static const char *int_what(unsigned flags) {
    if (flags & SIM_JSON_POSITIVE)
        return "a positive integer";
    if (flags & SIM_JSON_NONNEG)
        return "a non-negative integer";
    return "an integer";
}

/* Returns SIM_OK with *out set, 1 when absent and optional, or an error. */
static int get_integer(const json_t *obj, const char *key, unsigned flags, int64_t lo, int64_t hi,
                       int64_t *out, const char *src, sim_err *err) {
    const char *what = int_what(flags);
    char buf[96];
    json_t *v;
    json_int_t x;
    int rc = lookup(obj, key, flags, what, &v, src, err);

    if (rc != SIM_OK)
        return rc; /* 1: absent and optional */
    if (!json_is_integer(v))
        return sim_json_err_value(err, src, key, what, v, SIM_EPARSE);
    x = json_integer_value(v);
    if (((flags & SIM_JSON_POSITIVE) && x <= 0) || ((flags & SIM_JSON_NONNEG) && x < 0))
        return sim_json_err_value(err, src, key, what, v, SIM_EINVAL);
    if (x < lo || x > hi) {
        if (flags & SIM_JSON_POSITIVE)
            lo = 1;
        else if (flags & SIM_JSON_NONNEG)
            lo = 0;
        snprintf(buf, sizeof buf, "an integer in [%" PRId64 ", %" PRId64 "]", lo, hi);
        return sim_json_err_value(err, src, key, buf, v, SIM_EINVAL);
    }
    *out = (int64_t)x;
    return SIM_OK;
}

/* Integer field that fits in an int. Absent optional fields leave *out as is.
 * SIM_EPARSE: missing (when required) or not a JSON integer; SIM_EINVAL: sign
 * or int range. */
int sim_json_get_int(const json_t *obj, const char *key, unsigned flags, int *out, const char *src,
                     sim_err *err) {
    int64_t x = 0;
    int rc = get_integer(obj, key, flags, INT_MIN, INT_MAX, &x, src, err);
    if (rc == SIM_OK)
        *out = (int)x;
    return rc > 0 ? SIM_OK : rc;
}

/* 64-bit integer field (same rules as sim_json_get_int). */
int sim_json_get_i64(const json_t *obj, const char *key, unsigned flags, int64_t *out,
                     const char *src, sim_err *err) {
    int rc = get_integer(obj, key, flags, INT64_MIN, INT64_MAX, out, src, err);
    return rc > 0 ? SIM_OK : rc;
}

/* Number field: a JSON integer or real. unit (or NULL) is added to the
 * expectation, e.g. "a positive number (bytes/s)". */
int sim_json_get_double(const json_t *obj, const char *key, unsigned flags, const char *unit,
                        double *out, const char *src, sim_err *err) {
    char what[96];
    const char *base = "a number";
    json_t *v;
    double x;
    int rc;

    if (flags & SIM_JSON_POSITIVE)
        base = "a positive number";
    else if (flags & SIM_JSON_NONNEG)
        base = "a non-negative number";
    if (unit != NULL)
        snprintf(what, sizeof what, "%s (%s)", base, unit);
    else
        snprintf(what, sizeof what, "%s", base);
    rc = lookup(obj, key, flags, what, &v, src, err);
    if (rc != SIM_OK)
        return rc > 0 ? SIM_OK : rc;
    if (!json_is_number(v))
        return sim_json_err_value(err, src, key, what, v, SIM_EPARSE);
    x = json_number_value(v);
    if (((flags & SIM_JSON_POSITIVE) && !(x > 0)) || ((flags & SIM_JSON_NONNEG) && !(x >= 0)))
        return sim_json_err_value(err, src, key, what, v, SIM_EINVAL);
    *out = x;
    return SIM_OK;
}

/* String field; *out is borrowed from obj. */
int sim_json_get_string(const json_t *obj, const char *key, unsigned flags, const char **out,
                        const char *src, sim_err *err) {
    json_t *v;
    int rc = lookup(obj, key, flags, "a string", &v, src, err);

    if (rc != SIM_OK)
        return rc > 0 ? SIM_OK : rc;
    if (!json_is_string(v))
        return sim_json_err_value(err, src, key, "a string", v, SIM_EPARSE);
    *out = json_string_value(v);
    return SIM_OK;
}

/* Boolean field: JSON true or false (0 and 1 are refused). */
int sim_json_get_bool(const json_t *obj, const char *key, unsigned flags, int *out, const char *src,
                      sim_err *err) {
    json_t *v;
    int rc = lookup(obj, key, flags, "true or false", &v, src, err);

    if (rc != SIM_OK)
        return rc > 0 ? SIM_OK : rc;
    if (!json_is_boolean(v))
        return sim_json_err_value(err, src, key, "true or false", v, SIM_EPARSE);
    *out = json_is_true(v) ? 1 : 0;
    return SIM_OK;
}

/* Object field; *out is borrowed from obj. */
int sim_json_get_object(const json_t *obj, const char *key, unsigned flags, json_t **out,
                        const char *src, sim_err *err) {
    json_t *v;
    int rc = lookup(obj, key, flags, "an object", &v, src, err);

    if (rc != SIM_OK)
        return rc > 0 ? SIM_OK : rc;
    if (!json_is_object(v))
        return sim_json_err_value(err, src, key, "an object", v, SIM_EPARSE);
    *out = v;
    return SIM_OK;
}

/* ---- checks ---- */

int sim_json_check_range_i64(const char *key, int64_t v, int64_t lo, int64_t hi, const char *src,
                             sim_err *err) {
    if (v >= lo && v <= hi)
        return SIM_OK;
    sim_err_set(err, src, 0, 0,
                "%s: expected an integer in [%" PRId64 ", %" PRId64 "], got '%" PRId64 "'", key, lo,
                hi, v);
    return SIM_EINVAL;
}

int sim_json_check_range_double(const char *key, double v, double lo, double hi, const char *unit,
                                const char *src, sim_err *err) {
    if (v >= lo && v <= hi)
        return SIM_OK;
    sim_err_set(err, src, 0, 0, "%s: expected a number in [%.15g, %.15g]%s%s%s, got '%.15g'", key,
                lo, hi, unit ? " (" : "", unit ? unit : "", unit ? ")" : "", v);
    return SIM_EINVAL;
}

/* Keys are checked in the object's insertion order, so the first unknown
 * key in the file is the one named. */
int sim_json_utf8_ok(const char *s) {
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned c = *p, cp;
        int n, i;
        if (c < 0x80) {
            p++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            n = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;
            cp = c & 0x07;
        } else {
            return 0;
        }
        for (i = 1; i <= n; i++) {
            if ((p[i] & 0xc0) != 0x80)
                return 0;
            cp = cp << 6 | (p[i] & 0x3f);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        p += n + 1;
    }
    return 1;
}

json_t *sim_json_real_or_null(double v) {
    return isfinite(v) ? json_real(v) : json_null();
}

const char *sim_json_unknown_key(const json_t *obj, const char *const *known, char *list,
                                 size_t n) {
    const char *key;
    json_t *v;
    size_t i, used;

    json_object_foreach((json_t *)obj, key, v) {
        for (i = 0; known[i] != NULL; i++)
            if (strcmp(key, known[i]) == 0)
                break;
        if (known[i] != NULL)
            continue;
        list[0] = '\0';
        used = 0;
        for (i = 0; known[i] != NULL && used < n; i++)
            used += (size_t)snprintf(list + used, n - used, "%s%s", i ? ", " : "", known[i]);
        return key;
    }
    return NULL;
}

int sim_json_check_keys(const json_t *obj, const char *const *known, const char *src,
                        sim_err *err) {
    char list[512];
    const char *key = sim_json_unknown_key(obj, known, list, sizeof list);
    if (key == NULL)
        return SIM_OK;
    sim_err_set(err, src, 0, 0, "%s: expected a known key (one of %s), got an unknown key", key,
                list);
    return SIM_EPARSE;
}

/* ---- presets ---- */

/* Names are collected, sorted (readdir order is not stable across file
 * systems) and joined; a list longer than buf ends in "...". */
int sim_json_preset_list(const char *dir, char *buf, size_t n) {
    DIR *d;
    struct dirent *de;
    char **names = NULL, **nn;
    size_t n_names = 0, cap = 0, i, used = 0, len;
    int rc = SIM_OK;

    if (n == 0)
        return SIM_OK;
    buf[0] = '\0';
    d = opendir(dir);
    if (d == NULL)
        return SIM_OK;
    while ((de = readdir(d)) != NULL) {
        len = strlen(de->d_name);
        if (de->d_name[0] == '.' || len <= 5 || strcmp(de->d_name + len - 5, ".json") != 0)
            continue;
        if (n_names == cap) {
            cap = cap ? cap * 2 : 16;
            nn = sim_realloc(names, cap * sizeof *names);
            if (nn == NULL) {
                rc = SIM_ENOMEM;
                goto done;
            }
            names = nn;
        }
        names[n_names] = sim_malloc(len - 4);
        if (names[n_names] == NULL) {
            rc = SIM_ENOMEM;
            goto done;
        }
        memcpy(names[n_names], de->d_name, len - 5);
        names[n_names][len - 5] = '\0';
        n_names++;
    }
    if (n_names > 0)
        qsort(names, n_names, sizeof *names, sim_cmp_str);
    for (i = 0; i < n_names; i++) {
        const char *sep = i ? ", " : "";
        if (used + strlen(sep) + strlen(names[i]) + 4 >= n) {
            snprintf(buf + used, n - used, "%s...", sep);
            break;
        }
        used += (size_t)snprintf(buf + used, n - used, "%s%s", sep, names[i]);
    }

done:
    closedir(d);
    for (i = 0; i < n_names; i++)
        sim_free(names[i]);
    sim_free(names);
    if (rc != SIM_OK)
        buf[0] = '\0';
    return rc;
}

static int path_kind(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0)
        return 0;
    return S_ISDIR(st.st_mode) ? 2 : 1;
}

/* Resolution order: the preset DATADIR/SUBDIR/NAME.json (NAME without '/'),
 * then NAME as a path (a directory DIR as DIR/dir_file). The list of known
 * presets is only built when both fail. */
int sim_json_preset_path(const char *datadir, const char *subdir, const char *name_or_path,
                         const char *dir_file, const char *kind, const char *what, char *path,
                         size_t n, sim_err *err) {
    char dir[1024];
    char list[512];
    int k, m, rc;

    SIM_ASSERT(datadir != NULL && name_or_path != NULL && n > 0);
    path[0] = '\0';
    snprintf(dir, sizeof dir, "%s/%s", datadir, subdir);
    if (name_or_path[0] != '\0' && strchr(name_or_path, '/') == NULL) {
        m = snprintf(path, n, "%s/%s.json", dir, name_or_path);
        if (m > 0 && (size_t)m < n && path_kind(path) == 1)
            return SIM_OK;
    }
    k = name_or_path[0] != '\0' ? path_kind(name_or_path) : 0;
    if (k == 2 && dir_file != NULL) {
        m = snprintf(path, n, "%s/%s", name_or_path, dir_file);
        if (m > 0 && (size_t)m < n && path_kind(path) == 1)
            return SIM_OK;
    } else if (k != 0) {
        m = snprintf(path, n, "%s", name_or_path);
        if (m > 0 && (size_t)m < n)
            return SIM_OK;
    }
    path[0] = '\0';
    rc = sim_json_preset_list(dir, list, sizeof list);
    if (rc != SIM_OK) {
        sim_err_set(err, dir, 0, 0, "%s: out of memory listing presets", kind);
        return rc;
    }
    if (strchr(name_or_path, '/') != NULL && k == 0) /* a path, not a name */
        sim_err_set(err, name_or_path, 0, 0,
                    "%s: no such file or folder (expected a path to %s, or a preset name: %s)",
                    kind, what, list[0] ? list : "none found");
    else
        sim_err_set(err, dir, 0, 0, "%s: expected a preset name (%s) or a path to %s, got '%s'",
                    kind, list[0] ? list : "none found", what, name_or_path);
    return SIM_ENOENT;
}

void sim_json_stem(const char *path, char *buf, size_t n) {
    const char *base = strrchr(path, '/');
    const char *end;
    size_t len;

    if (n == 0)
        return;
    base = base ? base + 1 : path;
    if (strcmp(base, "config.json") == 0 && base > path) {
        /* A Hugging Face snapshot: name it after its folder, whose name
         * ends at the last of the slashes before config.json (a folder
         * given as "snap/Model/" is read as "snap/Model//config.json"). */
        const char *stop = base - 1;
        while (stop > path && stop[-1] == '/')
            stop--;
        end = stop;
        while (end > path && end[-1] != '/')
            end--;
        len = (size_t)(stop - end);
        if (len > 0) {
            snprintf(buf, n, "%.*s", (int)len, end);
            return;
        }
    }
    len = strlen(base);
    if (len > 5 && strcmp(base + len - 5, ".json") == 0)
        len -= 5;
    snprintf(buf, n, "%.*s", (int)len, base);
}
