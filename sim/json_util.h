/* json_util.h: small jansson helpers shared across kvfleet.
 *
 * Reading a whole file, parsing it as a JSON object with positioned syntax
 * errors, typed field getters whose errors follow the kvfleet form
 *     src[:line:col]: field: expected <what>, got '<value>'
 * (the value rendered as compact JSON), and the preset lookup used by the
 * model and GPU loaders (DATA/SUBDIR/NAME.json, else a path).
 *
 * Status codes: SIM_EPARSE when the text is not JSON or a field is missing or
 * of the wrong JSON type; SIM_EINVAL when a field is well typed but out of
 * range; SIM_ENOENT when a file or preset does not exist; SIM_EIO on other
 * read failures; SIM_ENOMEM when sim_malloc fails.
 *
 * Memory: buffers this module returns come from sim_malloc and are freed with
 * sim_free. json_t trees come from jansson's own allocator and are released
 * with json_decref: jansson does not report every allocation failure as such
 * (a failed allocation inside its lexer reads as a syntax error), so routing it
 * through sim_malloc would make fault injection report parse errors. The trees
 * live only while a config is being read.
 *
 * Non-goals: JSON writing, JSON Pointer paths, schemas. */
#ifndef SIM_JSON_UTIL_H
#define SIM_JSON_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "err.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Flags for the field getters (OR them together). Without SIM_JSON_REQUIRED
 * an absent or null key leaves *out unchanged and returns SIM_OK. */
#define SIM_JSON_REQUIRED 0x1u /* absent or null is an error */
#define SIM_JSON_POSITIVE 0x2u /* numbers: > 0 */
#define SIM_JSON_NONNEG   0x4u /* numbers: >= 0 */

/* Longest rendering of a value in an error message, in bytes (longer values end in "..."). */
#define SIM_JSON_RENDER_MAX 80

/* The JSON value in the file at path, keys given twice refused; NULL with
 * *rc and *err set (naming the file, the line and column, prefixed by what:
 * "fleet file", or "" for none) when it cannot be read or parsed: a folder
 * (SIM_EINVAL, "expected a file, got a folder"), a missing or unreadable
 * file (SIM_ENOENT), bad JSON (SIM_EPARSE). */
json_t *sim_json_load_path(const char *path, const char *what, int *rc, sim_err *err);
/* Reads the whole file into a NUL-terminated sim_malloc'ed buffer (returns owned). */
int sim_json_read_file(const char *path, char **out_text, size_t *out_len, sim_err *err);
/* Parses text (len bytes) as a JSON object; *out is a new reference. */
int sim_json_parse_object(const char *text, size_t len, const char *src, json_t **out,
                          sim_err *err);
/* Reads the file at path and parses it as a JSON object; errors name path. */
int sim_json_load_object(const char *path, json_t **out, sim_err *err);

/* Renders v as compact JSON into buf (always NUL-terminated, "..." when cut). */
void sim_json_render(const json_t *v, char *buf, size_t n);
/* Fills *err with "key: expected WHAT, got 'V'" (V = v rendered) and returns code. */
int sim_json_err_value(sim_err *err, const char *src, const char *key, const char *what,
                       const json_t *v, int code);

/* Integer field that fits in an int (JSON reals such as 4096.0 are refused). */
int sim_json_get_int(const json_t *obj, const char *key, unsigned flags, int *out, const char *src,
                     sim_err *err);
/* Integer field, 64-bit. */
int sim_json_get_i64(const json_t *obj, const char *key, unsigned flags, int64_t *out,
                     const char *src, sim_err *err);
/* Number field (JSON integer or real); unit (or NULL) is named in errors. */
int sim_json_get_double(const json_t *obj, const char *key, unsigned flags, const char *unit,
                        double *out, const char *src, sim_err *err);
/* String field; *out is borrowed until obj is released. */
int sim_json_get_string(const json_t *obj, const char *key, unsigned flags, const char **out,
                        const char *src, sim_err *err);
/* Boolean field (true or false only); *out is 0 or 1. */
int sim_json_get_bool(const json_t *obj, const char *key, unsigned flags, int *out, const char *src,
                      sim_err *err);
/* Object field; *out is borrowed until obj is released. */
int sim_json_get_object(const json_t *obj, const char *key, unsigned flags, json_t **out,
                        const char *src, sim_err *err);

/* Refuses v outside [lo, hi] with "key: expected an integer in [lo, hi], got 'v'". */
int sim_json_check_range_i64(const char *key, int64_t v, int64_t lo, int64_t hi, const char *src,
                             sim_err *err);
/* Refuses v outside [lo, hi] with "key: expected a number in [lo, hi] (unit), got 'v'". */
int sim_json_check_range_double(const char *key, double v, double lo, double hi, const char *unit,
                                const char *src, sim_err *err);
/* json_real(v), or JSON null for a figure that is undefined (NaN or
 * infinite): json_real() refuses those, and json_object_set_new() would
 * then drop the key. */
json_t *sim_json_real_or_null(double v);

/* 1 when s is valid UTF-8 (what a JSON string must hold: json_string
 * refuses anything else, and NULL from it is otherwise out of memory);
 * overlong forms, surrogates and code points past U+10FFFF are not. */
int sim_json_utf8_ok(const char *s);

/* The first key of obj not in known (NULL-terminated), with the known keys
 * joined by ", " into list (n bytes); NULL (list untouched) when none. */
const char *sim_json_unknown_key(const json_t *obj, const char *const *known, char *list, size_t n);
/* Refuses any key of obj not in known (NULL-terminated), naming the first one. */
int sim_json_check_keys(const json_t *obj, const char *const *known, const char *src, sim_err *err);

/* Lists the presets in dir (base names of its *.json files, sorted, joined by
 * ", ") into buf; "" when dir cannot be read. SIM_OK or SIM_ENOMEM. */
int sim_json_preset_list(const char *dir, char *buf, size_t n);
/* Resolves a preset name or a path. A name without '/' whose file
 * DATADIR/SUBDIR/NAME.json exists is that file; otherwise name_or_path is a
 * path (a directory is read as DIR/dir_file when dir_file is not NULL). When
 * neither exists, returns SIM_ENOENT with "KIND: expected a preset name (list)
 * or a path to WHAT, got 'NAME'" and src DATADIR/SUBDIR. */
int sim_json_preset_path(const char *datadir, const char *subdir, const char *name_or_path,
                         const char *dir_file, const char *kind, const char *what, char *path,
                         size_t n, sim_err *err);
/* Copies the base name of path without its ".json" suffix into buf; for
 * ".../DIR/config.json" it is DIR. */
void sim_json_stem(const char *path, char *buf, size_t n);

#ifdef __cplusplus
}
#endif
#endif /* SIM_JSON_UTIL_H */
