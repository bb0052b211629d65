/* Tiny KTAP v1 writer for gp100emu's guest suites (the host parses it: guest-tests/src/ktap.rs).
 * Format: https://docs.kernel.org/dev-tools/ktap.html */
#ifndef GP100EMU_KTAP_H
#define GP100EMU_KTAP_H
#include <stdarg.h>
#include <stdio.h>

static int ktap_number;
static int ktap_failures;

static inline void ktap_plan(int n)
{
	printf("KTAP version 1\n1..%d\n", n);
	fflush(stdout);
}

/* A diagnostic line, printed as "# ..." before the result it explains. */
static inline void ktap_diag(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("# ", stdout);
	vprintf(fmt, ap);
	fputc('\n', stdout);
	va_end(ap);
	fflush(stdout);
}

static inline void ktap_result(int ok, const char *name)
{
	ktap_number++;
	if (!ok)
		ktap_failures++;
	printf("%s %d %s\n", ok ? "ok" : "not ok", ktap_number, name);
	fflush(stdout);
}

static inline void ktap_skip(const char *name, const char *why)
{
	ktap_number++;
	printf("ok %d %s # SKIP %s\n", ktap_number, name, why);
	fflush(stdout);
}

/* An expected failure (KTAP "# TODO"): reported, counted apart from passes and failures. */
static inline void ktap_xfail(const char *name, const char *why)
{
	ktap_number++;
	printf("not ok %d %s # TODO %s\n", ktap_number, name, why);
	fflush(stdout);
}

static inline int ktap_exit_code(void)
{
	return ktap_failures ? 1 : 0;
}
#endif
