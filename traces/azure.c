/* azure.c: the Azure LLM inference trace (Splitwise, ISCA'24; the 2023 files
 * in Azure/AzurePublicDataset).
 *
 * Header TIMESTAMP,ContextTokens,GeneratedTokens (columns found by name,
 * extra columns allowed). TIMESTAMP is either a datetime
 * "YYYY-MM-DD HH:MM:SS[.fffffffff]" (a 'T' may replace the blank; up to 9
 * fractional digits; no time zone: the clock is taken as given) or plain
 * seconds. The first data row decides which, and every row must then use the
 * same form.
 *
 * Datetimes convert exactly, with integer arithmetic: days from the civil
 * date (Howard Hinnant's days_from_civil, proleptic Gregorian), counted from
 * the first row's day so the raw ns value never overflows, plus the
 * nanoseconds of the day. No mktime, no locale, no time zone. Rows must be
 * in non-decreasing time; the engine (csv.c) checks that and the token
 * counts. Non-goals: leap seconds, UTC offsets. */
#include "config.h"
#include "trace_int.h"

#include <string.h>

#define NS_PER_DAY    (86400LL * SIM_NS_PER_S)
#define MAX_SPAN_DAYS 100000 /* about 273 years between first and last row */

enum { TS_UNDECIDED = 0, TS_DATETIME, TS_SECONDS };

typedef struct azure_ctx {
    int mode;     /* TS_*: decided by the first row */
    int64_t day0; /* civil day number of the first datetime row */
} azure_ctx;

/* Days since 1970-01-01 of a proleptic Gregorian date (m 1..12, d 1..31). */
static int64_t days_from_civil(int64_t y, int m, int d) {
    int64_t era, yoe, doy, doe;
    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int is_leap(int64_t y) {
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Reads exactly n digits at *p into *v; advances *p. Returns 0 or -1. */
static int digits(const char **p, int n, int *v) {
    int i;
    *v = 0;
    for (i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return -1;
        *v = *v * 10 + (c - '0');
    }
    *p += n;
    return 0;
}

/* "YYYY-MM-DD HH:MM:SS[.f{1,9}]" to a day number and ns of the day.
 * Returns 0, or -1 when s is not such a datetime. */
static int parse_datetime(const char *s, int64_t *day, int64_t *ns_of_day) {
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y, mo, d, h, mi, sec, n_frac = 0;
    int64_t frac = 0;

    if (digits(&s, 4, &y) || *s++ != '-' || digits(&s, 2, &mo) || *s++ != '-' || digits(&s, 2, &d))
        return -1;
    if (*s != ' ' && *s != 'T')
        return -1;
    s++;
    if (digits(&s, 2, &h) || *s++ != ':' || digits(&s, 2, &mi) || *s++ != ':' ||
        digits(&s, 2, &sec))
        return -1;
    if (*s == '.') {
        for (s++; *s >= '0' && *s <= '9'; s++) {
            if (++n_frac > 9)
                return -1;
            frac = frac * 10 + (*s - '0');
        }
        if (n_frac == 0)
            return -1;
    }
    if (*s != '\0')
        return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] + (mo == 2 && is_leap(y)) || h > 23 ||
        mi > 59 || sec > 59)
        return -1;
    for (; n_frac < 9; n_frac++)
        frac *= 10;
    *day = days_from_civil(y, mo, d);
    *ns_of_day = ((int64_t)h * 3600 + mi * 60 + sec) * SIM_NS_PER_S + frac;
    return 0;
}

/* Looks like a datetime: four digits then '-'. */
static int looks_datetime(const char *s) {
    return strlen(s) > 4 && s[4] == '-' && s[0] >= '0' && s[0] <= '9';
}

static int azure_time(void *vctx, const trace__lines *l, int col, const char *field, const char *s,
                      int64_t *out_ns, sim_err *err) {
    azure_ctx *c = vctx;
    int64_t day, ns;
    const char *what;

    if (c->mode != TS_DATETIME && !looks_datetime(s)) {
        int rc = trace__parse_seconds(l, col, field, s, out_ns, err);
        if (rc == SIM_OK)
            c->mode = TS_SECONDS;
        if (rc == SIM_OK || c->mode == TS_SECONDS)
            return rc;
        /* The first row is neither form: the message below names both. */
    } else if (c->mode != TS_SECONDS && parse_datetime(s, &day, &ns) == 0) {
        if (c->mode == TS_UNDECIDED) {
            c->mode = TS_DATETIME;
            c->day0 = day;
        }
        if (day - c->day0 <= MAX_SPAN_DAYS && c->day0 - day <= MAX_SPAN_DAYS) {
            *out_ns = (day - c->day0) * NS_PER_DAY + ns;
            return SIM_OK;
        }
        sim_err_set(err, l->path, l->line_no, col,
                    "%s: expected a datetime within %d days of the first row's, got '%.64s'", field,
                    MAX_SPAN_DAYS, s);
        return SIM_EPARSE;
    }
    if (c->mode == TS_DATETIME)
        what = "a datetime 'YYYY-MM-DD HH:MM:SS[.fffffffff]' like the first row's";
    else if (c->mode == TS_SECONDS)
        what = "a number of seconds in [0, 9.2e9] like the first row's";
    else
        what = "a datetime 'YYYY-MM-DD HH:MM:SS[.fffffffff]' or seconds in [0, 9.2e9]";
    sim_err_set(err, l->path, l->line_no, col, "%s: expected %s, got '%.64s'", field, what, s);
    return SIM_EPARSE;
}

static const trace__reqcsv_desc azure_desc = {
    .fmt_name = "azure",
    .time_col = "TIMESTAMP",
    .prompt_col = "ContextTokens",
    .output_col = "GeneratedTokens",
    .parse_time = azure_time,
    .ctx_size = sizeof(azure_ctx),
};

int trace__azure_open(trace__lines *l, trace__impl *out, sim_err *err) {
    return trace__reqcsv_open(l, &azure_desc, out, err);
}
