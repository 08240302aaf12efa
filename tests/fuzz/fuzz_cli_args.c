/*
 * fuzz_cli_args.c -- libFuzzer target for the knytt command line: the
 * option parser of examples/knytt/main.c, then the filter options
 * (cli_parse_filter), --k, --now (cli_parse_time) and --window
 * (cli_parse_duration) as each command reads them.
 *
 * Input: the arguments after "knytt", one a line ('\n' ends each; at most
 * 40).  Besides never crashing, two properties are checked (abort on
 * failure): a time accepted in ISO form has the documented shape
 * (sscanf's %d and strtod alone let "2024-05-01T-1:00" and
 * "2024-05-01T12:00: 1e1" through), and an
 * accepted time printed back as YYYY-MM-DDTHH:MM:SS.mmmZ parses to the
 * same millisecond.
 *
 * main.c is included with its main() renamed so that the static parser
 * is reached as the command runs it; the other CLI files are linked
 * (Makefile: FUZZ_CLI).  Usage errors go to a stderr on /dev/null, so a
 * long run does not fill its log; sanitizer reports use fd 2 directly.
 */
int knytt_cli_main(int argc, char **argv);
#define main knytt_cli_main
#include "../../examples/knytt/main.c"
#undef main

#include "fuzz.h"

#include <time.h>

#define MAX_ARGS 40

/* 1 when @p s matches @p pat at its start: 'd' a digit, else itself. */
static int shaped(const char *s, const char *pat)
{
	for (; *pat; pat++, s++)
		if (*pat == 'd' ? !(*s >= '0' && *s <= '9') : *s != *pat)
			return 0;
	return 1;
}

/* The ISO form knytt(1) documents, written out independently of
 * cli_parse_time: YYYY-MM-DD[(T| )HH:MM[:SS[.fff]]][Z|(+|-)HH:MM]. */
static int iso_shaped(const char *s)
{
	if (!shaped(s, "dddd-dd-dd"))
		return 0;
	s += 10;
	if ((*s == 'T' || *s == ' ') && shaped(s + 1, "dd:dd")) {
		s += 6;
		if (*s == ':' && shaped(s + 1, "dd")) {
			s += 3;
			if (*s == '.' && shaped(s + 1, "d"))
				for (s++; *s >= '0' && *s <= '9'; s++)
					;
		}
	}
	if (*s == 'Z')
		s++;
	else if ((*s == '+' || *s == '-') && shaped(s + 1, "dd:dd"))
		s += 6;
	return *s == 0;
}

static void check_time(const char *s)
{
	int64_t ms = 0, again = 0;
	if (cli_parse_time(s, &ms) != 0)
		return;
	if (strspn(s, "0123456789") != strlen(s) && !iso_shaped(s))
		abort();
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	if (!gmtime_r(&t, &tm) || tm.tm_year + 1900 > 9999)
		return;
	char buf[64];
	snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
		 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		 tm.tm_min, tm.tm_sec, (int)(ms % 1000));
	if (cli_parse_time(buf, &again) != 0 || again != ms)
		abort();
}

static void use(const args *a)
{
	knytt_filter f;
	int any;
	size_t k;
	double w;
	cli_parse_filter(a, &f, &any);
	cli_parse_k(a, &k);
	const char *now = arg_get(a, "now"), *win = arg_get(a, "window");
	if (now)
		check_time(now);
	if (win)
		cli_parse_duration(win, &w);
	for (int i = 0; i < a->npos; i++) {
		check_time(a->pos[i]);
		cli_parse_duration(a->pos[i], &w);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int quiet;
	if (!quiet) {
		FILE *null = fopen("/dev/null", "w");
		if (null)
			stderr = null;
		quiet = 1;
	}
	char *buf = malloc(size + 1);
	char *argv[MAX_ARGS + 2];
	int argc = 0;
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	buf[size] = 0;
	static char name[] = "knytt";
	argv[argc++] = name;
	for (char *p = buf; argc <= MAX_ARGS && p < buf + size;) {
		char *nl = memchr(p, '\n', (size_t)(buf + size - p));
		if (nl)
			*nl = 0;
		argv[argc++] = p;
		p = nl ? nl + 1 : buf + size;
	}
	argv[argc] = NULL;
	const command *cmd = NULL;
	args a;
	int help = 0, version = 0;
	cli_json_errors = 0;
	if (parse(argc, argv, &cmd, &a, &help, &version) == 0)
		use(&a);
	for (int i = 0; i < a.nopts; i++)
		free((char *)a.names[i]);
	free(buf);
	return 0;
}
