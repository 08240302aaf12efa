/*
 * kdtest.c -- see kdtest.h.  Not a suite: the Makefile links it into
 * the test binary with the check_*.c files.
 */
#include "kdtest.h"

#include <curl/curl.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *bin(void)
{
	const char *b = getenv("KNYTTD_BIN");
	return b && *b ? b : "build/bin/knyttd";
}

/* Reads the "listening on http://HOST:PORT" line (20 s at most). */
static int read_port(int fd, unsigned *port)
{
	char line[512];
	size_t n = 0;
	while (n + 1 < sizeof line) {
		struct pollfd p = {fd, POLLIN, 0};
		if (poll(&p, 1, 20000) <= 0)
			return -1;
		ssize_t got = read(fd, line + n, 1);
		if (got <= 0)
			return -1;
		if (line[n++] == '\n')
			break;
	}
	line[n] = 0;
	const char *p = strstr(line, "http://127.0.0.1:");
	if (!p)
		return -1;
	*port = (unsigned)strtoul(p + 17, NULL, 10);
	return *port ? 0 : -1;
}

/*
 * A test that fails ends its process before its own clean-up: servers
 * and store directories it made are remembered with the process that
 * made them, and removed at that process's exit (Check's forked tests
 * inherit the list, hence the owner check).
 */
#define MAX_OWNED 32
static struct owned {
	pid_t owner, server;
	char dir[64];
} owned[MAX_OWNED];
static int nowned;

static void owned_cleanup(void)
{
	for (int i = 0; i < nowned; i++) {
		if (owned[i].owner != getpid())
			continue;
		if (owned[i].server > 0 && kill(owned[i].server, 0) == 0) {
			kill(owned[i].server, SIGKILL);
			waitpid(owned[i].server, NULL, 0);
		}
		if (owned[i].dir[0] && access(owned[i].dir, F_OK) == 0) {
			char cmd[128];
			snprintf(cmd, sizeof cmd, "rm -rf '%s'", owned[i].dir);
			if (system(cmd) != 0)
				fprintf(stderr, "kdtest: cannot remove %s\n",
					owned[i].dir);
		}
	}
}

static void own(pid_t server, const char *dir)
{
	if (nowned == 0)
		atexit(owned_cleanup);
	if (nowned == MAX_OWNED)
		return;
	owned[nowned].owner = getpid();
	owned[nowned].server = server;
	snprintf(owned[nowned].dir, sizeof owned[nowned].dir, "%s",
		 dir ? dir : "");
	nowned++;
}

/* @p server was reaped: its pid may be reused, never signal it again. */
static void disown(pid_t server)
{
	for (int i = 0; i < nowned; i++)
		if (owned[i].server == server)
			owned[i].server = 0;
}

int kd_start(kd_srv *s, const char *const *extra)
{
	if (!s->dir[0]) {
		snprintf(s->dir, sizeof s->dir, "/tmp/knyttd-test-XXXXXX");
		if (!mkdtemp(s->dir))
			return -1;
		snprintf(s->uri, sizeof s->uri, "sqlite:%s/k.db", s->dir);
		own(0, s->dir);
	}
	const char *argv[40] = {bin(), "--listen", "127.0.0.1:0", "--db",
				s->uri, "--pwhash-ops", "1", "--pwhash-mem",
				"64", "--quiet", "--threads", "4"};
	int argc = 12;
	for (int i = 0; extra && extra[i] && argc < 38; i++)
		argv[argc++] = extra[i];
	argv[argc] = NULL;
	int fds[2];
	if (pipe(fds))
		return -1;
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		/* the server dies with the test that started it */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(fds[1], 1);
		close(fds[0]);
		close(fds[1]);
		setenv("KNYTT_ADMIN_KEY", KD_ADMIN, 1);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(fds[1]);
	s->pid = pid;
	own(pid, NULL);
	int rc = read_port(fds[0], &s->port);
	close(fds[0]);
	if (rc) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		disown(pid);
		s->pid = 0;
		return -1;
	}
	snprintf(s->base, sizeof s->base, "http://127.0.0.1:%u", s->port);
	return 0;
}

int kd_stop(kd_srv *s)
{
	if (s->pid <= 0)
		return -1;
	kill(s->pid, SIGTERM);
	int st = 0;
	for (int i = 0; i < 600; i++) { /* 60 s */
		pid_t w = waitpid(s->pid, &st, WNOHANG);
		if (w == s->pid) {
			disown(s->pid);
			s->pid = 0;
			return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
		}
		struct timespec ts = {0, 100 * 1000000L};
		nanosleep(&ts, NULL);
	}
	kill(s->pid, SIGKILL);
	waitpid(s->pid, NULL, 0);
	disown(s->pid);
	s->pid = 0;
	return -1;
}

void kd_cleanup(kd_srv *s)
{
	if (!s->dir[0])
		return;
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", s->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "kdtest: cannot remove %s\n", s->dir);
	s->dir[0] = 0;
}

typedef struct buf {
	char *p;
	size_t n;
} buf;

static size_t on_data(char *d, size_t sz, size_t nm, void *ctx)
{
	buf *b = ctx;
	char *q = realloc(b->p, b->n + sz * nm + 1);
	if (!q)
		return 0;
	memcpy(q + b->n, d, sz * nm);
	b->p = q;
	b->n += sz * nm;
	b->p[b->n] = 0;
	return sz * nm;
}

typedef struct hdr {
	char *allow;
	size_t cap;
} hdr;

static size_t on_header(char *d, size_t sz, size_t nm, void *ctx)
{
	hdr *h = ctx;
	size_t n = sz * nm;
	if (h->allow && n > 7 && strncasecmp(d, "Allow: ", 7) == 0) {
		size_t k = n - 7;
		while (k && (d[7 + k - 1] == '\r' || d[7 + k - 1] == '\n'))
			k--;
		if (k >= h->cap)
			k = h->cap - 1;
		memcpy(h->allow, d + 7, k);
		h->allow[k] = 0;
	}
	return n;
}

long kd_call_raw(const kd_srv *s, const char *method, const char *path,
		 const char *key, const char *ctype, const char *body,
		 size_t len, const char *const *headers, cJSON **out,
		 char *allow, size_t allow_cap)
{
	CURL *c = curl_easy_init();
	if (!c)
		return 0;
	char url[2048], h[512];
	snprintf(url, sizeof url, "%s%s", s->base, path);
	struct curl_slist *hl = NULL;
	if (key) {
		snprintf(h, sizeof h, "Authorization: Bearer %s", key);
		hl = curl_slist_append(hl, h);
	}
	if (ctype) {
		snprintf(h, sizeof h, "Content-Type: %s", ctype);
		hl = curl_slist_append(hl, h);
	} else {
		hl = curl_slist_append(hl, "Content-Type:");
	}
	for (int i = 0; headers && headers[i]; i++)
		hl = curl_slist_append(hl, headers[i]);
	hl = curl_slist_append(hl, "Expect:");
	buf b = {NULL, 0};
	hdr hd = {allow, allow_cap};
	if (allow)
		allow[0] = 0;
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &hd);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 120L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	if (body) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
				 (curl_off_t)len);
	}
	long status = 0;
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(hl);
	curl_easy_cleanup(c);
	if (out)
		*out = b.p ? cJSON_Parse(b.p) : NULL;
	free(b.p);
	return status;
}

long kd_call(const kd_srv *s, const char *method, const char *path,
	     const char *key, const char *token, const char *body,
	     cJSON **out)
{
	char th[1200];
	const char *hs[2] = {NULL, NULL};
	if (token) {
		snprintf(th, sizeof th, "X-User-Token: %s", token);
		hs[0] = th;
	}
	return kd_call_raw(s, method, path, key,
			   body ? "application/json" : NULL, body,
			   body ? strlen(body) : 0, hs, out, NULL, 0);
}

static int key_of(const kd_srv *s, const char *tenant, const char *kind,
		  char *key)
{
	char path[256], body[64];
	snprintf(path, sizeof path, "/api/v1/admin/tenants/%s/keys", tenant);
	snprintf(body, sizeof body, "{\"kind\":\"%s\"}", kind);
	cJSON *o = NULL;
	long st = kd_call(s, "POST", path, KD_ADMIN, NULL, body, &o);
	const cJSON *k = cJSON_GetObjectItem(o, "key");
	int rc = st == 201 && cJSON_IsString(k) ? 0 : -1;
	if (rc == 0)
		snprintf(key, 80, "%s", k->valuestring);
	cJSON_Delete(o);
	return rc;
}

int kd_tenant(const kd_srv *s, const char *name, char *sk, char *pk)
{
	char body[300];
	snprintf(body, sizeof body, "{\"name\":\"%s\"}", name);
	if (kd_call(s, "POST", "/api/v1/admin/tenants", KD_ADMIN, NULL, body,
		    NULL) != 201)
		return -1;
	return key_of(s, name, "secret", sk) || key_of(s, name, "public", pk);
}

int kd_register(const kd_srv *s, const char *pk, const char *user,
		char *token, size_t cap)
{
	char body[400];
	snprintf(body, sizeof body,
		 "{\"user_id\":\"%s\",\"password\":\"correct horse\"}", user);
	cJSON *o = NULL;
	long st = kd_call(s, "POST", "/api/v1/auth/register", pk, NULL, body,
			  &o);
	const cJSON *t = cJSON_GetObjectItem(o, "token");
	int rc = st == 201 && cJSON_IsString(t) ? 0 : -1;
	if (rc == 0)
		snprintf(token, cap, "%s", t->valuestring);
	cJSON_Delete(o);
	return rc;
}

const char *kd_code(const cJSON *o)
{
	const cJSON *e = cJSON_GetObjectItem(o, "error");
	const cJSON *c = cJSON_GetObjectItem(e, "code");
	return cJSON_IsString(c) ? c->valuestring : "";
}

const char *kd_field(const cJSON *o)
{
	const cJSON *e = cJSON_GetObjectItem(o, "error");
	const cJSON *c = cJSON_GetObjectItem(e, "field");
	return cJSON_IsString(c) ? c->valuestring : "";
}
