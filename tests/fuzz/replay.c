/*
 * replay.c -- main() for the fuzz targets built without libFuzzer: runs
 * LLVMFuzzerTestOneInput once over each file named on the command line
 * (directories: each regular file in them), so the seed corpora and the
 * inputs that once crashed (tests/fuzz/regress/<target>/) are replayed
 * by make test with the normal compiler, and under ASan by make
 * sanitize.  Prints the number of inputs run; exits 1 if a path cannot
 * be read.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		perror(path);
		return -1;
	}
	size_t cap = 4096, n = 0, got;
	uint8_t *b = malloc(cap);
	while (b && (got = fread(b + n, 1, cap - n, f)) > 0) {
		n += got;
		if (n == cap) {
			uint8_t *nb = realloc(b, 2 * cap);
			if (!nb) {
				free(b);
				b = NULL;
				break;
			}
			b = nb;
			cap *= 2;
		}
	}
	int err = ferror(f) || !b;
	fclose(f);
	if (err) {
		fprintf(stderr, "%s: cannot read\n", path);
		free(b);
		return -1;
	}
	/* an exact-size copy, so ASan sees a read one past the input */
	uint8_t *exact = malloc(n ? n : 1);
	if (exact && n)
		memcpy(exact, b, n);
	free(b);
	if (!exact)
		return -1;
	LLVMFuzzerTestOneInput(exact, n);
	free(exact);
	return 1;
}

static int cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Runs every regular file of @p dir, in name order; the count or -1. */
static int run_dir(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d) {
		perror(dir);
		return -1;
	}
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	int rc = 0;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 64;
			char **nn = realloc(names, cap * sizeof *nn);
			if (!nn) {
				rc = -1;
				break;
			}
			names = nn;
		}
		size_t l = strlen(dir) + strlen(de->d_name) + 2;
		if (!(names[n] = malloc(l))) {
			rc = -1;
			break;
		}
		snprintf(names[n++], l, "%s/%s", dir, de->d_name);
	}
	closedir(d);
	if (n)
		qsort(names, n, sizeof *names, cmp);
	for (size_t i = 0; i < n; i++) {
		struct stat sb;
		if (rc >= 0 && stat(names[i], &sb) == 0 && S_ISREG(sb.st_mode)) {
			int r = run_file(names[i]);
			rc = r < 0 ? -1 : rc + r;
		}
		free(names[i]);
	}
	free(names);
	return rc;
}

int main(int argc, char **argv)
{
	long total = 0;
	for (int i = 1; i < argc; i++) {
		struct stat sb;
		int r = -1;
		if (stat(argv[i], &sb) != 0)
			perror(argv[i]);
		else
			r = S_ISDIR(sb.st_mode) ? run_dir(argv[i])
						: run_file(argv[i]);
		if (r < 0)
			return 1;
		total += r;
	}
	printf("%s: %ld inputs replayed\n", argv[0], total);
	return 0;
}
