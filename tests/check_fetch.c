/* Fetching with libcurl against a small HTTP server on loopback (python3's
 * http.server with a few extra routes), started once per test case. The
 * server binds port 0 and prints its port, so nothing depends on timing. */
#include "config.h"

#include <check.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <patient/fetch.h>
#include <patient/hash.h>

#include "fetch_int.h"
#include "util.h"
#include "testutil.h"

static const char SERVER[] =
    "import gzip, http.server, os, sys\n"
    "root, log = sys.argv[1], sys.argv[2]\n"
    "os.chdir(root)\n"
    "class H(http.server.SimpleHTTPRequestHandler):\n"
    "    def log_request(self, code='-', size='-'):\n"
    "        with open(log, 'a') as f:\n"
    "            f.write('%s %s ims=%s inm=%s ua=%s\\n' % (self.path, code,\n"
    "                    self.headers.get('If-Modified-Since') is not None,\n"
    "                    self.headers.get('If-None-Match') is not None,\n"
    "                    self.headers.get('User-Agent')))\n"
    "    def log_message(self, *a):\n"
    "        pass\n"
    "    def plain(self, code, body, headers=()):\n"
    "        self.send_response(code)\n"
    "        for k, v in headers:\n"
    "            self.send_header(k, v)\n"
    "        self.send_header('Content-Length', str(len(body)))\n"
    "        self.end_headers()\n"
    "        self.wfile.write(body)\n"
    "    def do_GET(self):\n"
    "        p = self.path\n"
    "        if p.startswith('http://proxied.invalid/'):\n"
    "            return self.plain(200, b'via proxy ' + p.encode())\n"
    "        if p == '/gzip':\n"
    "            return self.plain(200, gzip.compress(b'hello gzip world\\n' * 100),\n"
    "                              [('Content-Encoding', 'gzip'), ('Content-Type', 'text/plain')])\n"
    "        if p == '/multi':\n"
    "            return self.plain(200, b'multi', [('Patient-Change', 'first'), ('X-Other', '1'),\n"
    "                                              ('Patient-Change', 'second')])\n"
    "        if p == '/bighdr':\n"
    "            return self.plain(200, b'big', [('X-Big', 'x' * 5000)])\n"
    "        if p.startswith('/redir/'):\n"
    "            n = int(p[7:])\n"
    "            if n == 0:\n"
    "                return self.plain(200, b'end')\n"
    "            return self.plain(302, b'', [('Location', '/redir/%d' % (n - 1))])\n"
    "        if p in ('/trailer', '/trailer0'):\n"
    "            body = b'abc' if p == '/trailer' else b''\n"
    "            self.wfile.write(b'HTTP/1.1 200 OK\\r\\nTransfer-Encoding: chunked\\r\\n'\n"
    "                             b'Patient-Change: first\\r\\nConnection: close\\r\\n\\r\\n' +\n"
    "                             (b'%x\\r\\n%s\\r\\n' % (len(body), body) if body else b'') +\n"
    "                             b'0\\r\\nHTTP/1.1 200 OK: x\\r\\nPatient-Change: garbage\\r\\n'\n"
    "                             b'X-Late: 1\\r\\n\\r\\n')\n"
    "            self.close_connection = True\n"
    "            return\n"
    "        if p == '/keep':  # kept open for the next request\n"
    "            self.protocol_version = 'HTTP/1.1'\n"
    "            self.plain(200, b'kept')\n"
    "            self.close_connection = False\n"
    "            return\n"
    "        if p == '/tofile':\n"
    "            return self.plain(302, b'', [('Location', 'file:///etc/passwd')])\n"
    "        return super().do_GET()\n"
    "s = http.server.ThreadingHTTPServer(('127.0.0.1', 0), H)\n"
    "if len(sys.argv) > 3:\n"
    "    import ssl\n"
    "    c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n"
    "    c.minimum_version = ssl.TLSVersion.TLSv1_3\n"
    "    c.load_cert_chain(sys.argv[3], sys.argv[4])\n"
    "    s.socket = c.wrap_socket(s.socket, server_side=True)\n"
    "s.handle_error = lambda *a: None  # clients that abort early are expected\n"
    "print(s.server_address[1], flush=True)\n"
    "s.serve_forever()\n";

/* socket(2) as the library calls it: the core is linked in statically, so
 * its calls come here; once armed, the TCP sockets made are counted, and
 * those not close-on-exec, before libc's (looked up before any test). */
static int socket_armed, socket_tcp, socket_inheritable;
static int (*real_socket)(int, int, int);

__attribute__((constructor)) static void
find_real_socket(void)
{
    *(void **)&real_socket = dlsym(RTLD_NEXT, "socket");
}

int
socket(int domain, int type, int protocol)
{
#ifdef SOCK_CLOEXEC
    if (socket_armed && domain == AF_INET &&
        (type & ~(SOCK_CLOEXEC | SOCK_NONBLOCK)) == SOCK_STREAM) {
        socket_tcp++;
        socket_inheritable += !(type & SOCK_CLOEXEC);
    }
#endif
    return real_socket(domain, type, protocol);
}

static char tmpdir[64];
static char base[64];
static pid_t server_pid = -1;

static void
write_file(const char *rel, const void *data, size_t len)
{
    char path[256];
    FILE *f;

    snprintf(path, sizeof path, "%s/%s", tmpdir, rel);
    f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, len, f), len);
    fclose(f);
    {
        /* Back-date fixtures: a Last-Modified within a second or two of the
         * response's Date is a weak validator, which the cache refuses. */
        struct timeval tv[2] = {{time(NULL) - 3600, 0}, {time(NULL) - 3600, 0}};
        ck_assert_int_eq(utimes(path, tv), 0);
    }
}

static int use_tls;

static void
server_start(void)
{
    int fds[2];
    char root[128], log[128], line[32] = "";
    char *big;
    FILE *f;

    tu_mkdtemp(tmpdir, sizeof tmpdir, "check_fetch");
    snprintf(root, sizeof root, "%s/www", tmpdir);
    snprintf(log, sizeof log, "%s/requests.log", tmpdir);
    ck_assert_int_eq(mkdir(root, 0755), 0);
    snprintf(line, sizeof line, "www/dir");
    {
        char d[160];
        snprintf(d, sizeof d, "%s/dir", root);
        ck_assert_int_eq(mkdir(d, 0755), 0);
    }
    write_file("www/small.txt", "hello\n", 6);
    write_file("www/dir/index.html", "<p>index</p>\n", 13);
    big = malloc(100000);
    memset(big, 'B', 100000);
    write_file("www/big.bin", big, 100000);
    free(big);

    if (use_tls) {
        char cmd[1024];
        /* A throw-away CA-less self-signed certificate for 127.0.0.1. */
        snprintf(cmd, sizeof cmd,
                 "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
                 "-keyout '%s/key.pem' -out '%s/cert.pem' -days 2 -subj /CN=127.0.0.1 "
                 "-addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1",
                 tmpdir, tmpdir);
        ck_assert_int_eq(system(cmd), 0);
    }
    ck_assert_int_eq(pipe(fds), 0);
    server_pid = fork();
    ck_assert_int_ge(server_pid, 0);
    if (server_pid == 0) {
        dup2(fds[1], STDOUT_FILENO);
        close(fds[0]);
        close(fds[1]);
        char cert[128], key[128];
        snprintf(cert, sizeof cert, "%s/cert.pem", tmpdir);
        snprintf(key, sizeof key, "%s/key.pem", tmpdir);
        if (use_tls)
            execl("/usr/bin/python3", "python3", "-c", SERVER, root, log, cert, key, (char *)NULL);
        else
            execl("/usr/bin/python3", "python3", "-c", SERVER, root, log, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    f = fdopen(fds[0], "r");
    ck_assert_ptr_nonnull(f);
    ck_assert_msg(fgets(line, sizeof line, f) != NULL, "test server did not start");
    fclose(f);
    snprintf(base, sizeof base, "%s://127.0.0.1:%d", use_tls ? "https" : "http", atoi(line));
}

static void
server_stop(void)
{
    if (server_pid > 0) {
        kill(server_pid, SIGTERM);
        waitpid(server_pid, NULL, 0);
        server_pid = -1;
    }
    tu_rmtree(tmpdir);
}

static char *
url(const char *path)
{
    static char buf[256];
    snprintf(buf, sizeof buf, "%s%s", base, path);
    return buf;
}

static patient_fetch_opts
opts(void)
{
    patient_fetch_opts o;
    patient_fetch_opts_init(&o);
    o.timeout_ms = 30000; /* a safety net only */
    return o;
}

static char *
read_log(void)
{
    char path[128];
    uint8_t *data = NULL;
    size_t len = 0;

    snprintf(path, sizeof path, "%s/requests.log", tmpdir);
    if (pt_read_file(path, 1 << 20, &data, &len) != PATIENT_OK)
        return strdup("");
    return (char *)data;
}

START_TEST(test_ok)
{
    patient_fetch_opts o = opts();
    patient_response *r = NULL;
    char *detail = NULL, *log;

    ck_assert_int_eq(patient_fetch(&o, url("/small.txt"), &r, &detail), PATIENT_OK);
    ck_assert_ptr_null(detail);
    ck_assert_int_eq(r->status, 200);
    ck_assert_uint_eq(r->body_len, 6);
    ck_assert_str_eq((char *)r->body, "hello\n");
    ck_assert_str_eq(r->url, url("/small.txt"));
    ck_assert_str_eq(r->content_type, "text/plain");
    ck_assert_ptr_nonnull(r->last_modified);
    ck_assert_ptr_nonnull(patient_response_header(r, "content-length"));
    ck_assert_int_eq(r->tls, 0);
    ck_assert_ptr_null(r->tls_version);
    patient_response_free(r);
    log = read_log();
    ck_assert_ptr_nonnull(strstr(log, "/small.txt 200 ims=False inm=False ua=patient/" PACKAGE_VERSION));
    free(log);
}
END_TEST

START_TEST(test_status_404)
{
    patient_fetch_opts o = opts();
    patient_response *r = NULL;

    ck_assert_int_eq(patient_fetch(&o, url("/nope.txt"), &r, NULL), PATIENT_OK);
    ck_assert_int_eq(r->status, 404);
    patient_response_free(r);
    /* defaults when opts is NULL */
    ck_assert_int_eq(patient_fetch(NULL, url("/small.txt"), &r, NULL), PATIENT_OK);
    ck_assert_int_eq(r->status, 200);
    patient_response_free(r);
}
END_TEST

START_TEST(test_body_cap)
{
    patient_fetch_opts o = opts();
    patient_response *r = NULL;
    char *detail = NULL;

    o.max_body = 100000;
    ck_assert_int_eq(patient_fetch(&o, url("/big.bin"), &r, NULL), PATIENT_OK);
    ck_assert_uint_eq(r->body_len, 100000);
    patient_response_free(r);
    r = NULL;
    o.max_body = 99999;
    ck_assert_int_eq(patient_fetch(&o, url("/big.bin"), &r, &detail), PATIENT_ERR_TOO_LARGE);
    ck_assert_ptr_null(r);
    ck_assert_ptr_nonnull(detail);
    free(detail);
    /* the cap applies to the decoded body: 1700 bytes from a small gzip */
    o.max_body = 1000;
    ck_assert_int_eq(patient_fetch(&o, url("/gzip"), &r, NULL), PATIENT_ERR_TOO_LARGE);
}
END_TEST

START_TEST(test_header_caps)
{
    patient_fetch_opts o = opts();
    patient_response *r = NULL;

    ck_assert_int_eq(patient_fetch(&o, url("/bighdr"), &r, NULL), PATIENT_OK);
    ck_assert_uint_eq(strlen(patient_response_header(r, "X-Big")), 5000);
    patient_response_free(r);
    r = NULL;
    o.max_header_line = 4096;
    ck_assert_int_eq(patient_fetch(&o, url("/bighdr"), &r, NULL), PATIENT_ERR_TOO_LARGE);
    ck_assert_ptr_null(r);
    o = opts();
    o.max_headers = 2048;
    ck_assert_int_eq(patient_fetch(&o, url("/bighdr"), &r, NULL), PATIENT_ERR_TOO_LARGE);
    ck_assert_int_eq(patient_fetch(&o, url("/small.txt"), &r, NULL), PATIENT_OK);
    patient_response_free(r);
}
END_TEST

START_TEST(test_decoding_and_headers)
{
    patient_fetch_opts o = opts();
    patient_response *r = NULL;
    size_t seen = 0;

    ck_assert_int_eq(patient_fetch(&o, url("/gzip"), &r, NULL), PATIENT_OK);
    ck_assert_uint_eq(r->body_len, 1700);
    ck_assert_int_eq(memcmp(r->body, "hello gzip world\nhello", 22), 0);
    ck_assert_str_eq(patient_response_header(r, "Content-Encoding"), "gzip");
    patient_response_free(r);

    ck_assert_int_eq(patient_fetch(&o, url("/multi"), &r, NULL), PATIENT_OK);
    ck_assert_str_eq(patient_response_header(r, "patient-change"), "first");
    for (size_t i = 0; i < r->nheaders; i++) {
        if (strcasecmp(r->headers[i].name, "Patient-Change") != 0)
            continue;
        ck_assert_str_eq(r->headers[i].value, seen == 0 ? "first" : "second");
        seen++;
    }
    ck_assert_uint_eq(seen, 2);
    patient_response_free(r);
}
END_TEST

/* What a sink saw of the headers when it was asked. */
typedef struct {
    size_t changes, late, bytes;
    int first;
} sink_seen;

static int
trailer_head(void *ctx, const patient_response *h)
{
    sink_seen *s = ctx;
    for (size_t i = 0; i < h->nheaders; i++) {
        if (strcasecmp(h->headers[i].name, "Patient-Change") == 0) {
            s->first = s->changes == 0 && strcmp(h->headers[i].value, "first") == 0;
            s->changes++;
        }
        s->late += strcasecmp(h->headers[i].name, "X-Late") == 0;
    }
    return 1;
}

static patient_err
trailer_data(void *ctx, const uint8_t *p, size_t n)
{
    (void)p;
    ((sink_seen *)ctx)->bytes += n;
    return PATIENT_OK;
}

/* Trailers of a chunked body (here a line that starts as a status line
 * does, "HTTP/1.1 200 OK: x" (libcurl refuses a trailer without a colon),
 * a Patient-Change and another header) are not the response's headers:
 * neither kept nor streamed, with a body or without one. */
START_TEST(test_trailers_ignored)
{
    static const char *paths[] = {"/trailer", "/trailer0"};

    for (size_t k = 0; k < 2; k++) {
        patient_fetch_opts o = opts();
        patient_response *r = NULL;
        sink_seen seen = {0};
        pt_fetch_sink sink = {trailer_head, trailer_data, &seen};
        size_t changes = 0;

        ck_assert_int_eq(patient_fetch(&o, url(paths[k]), &r, NULL), PATIENT_OK);
        ck_assert_int_eq(r->status, 200);
        ck_assert_uint_eq(r->body_len, k == 0 ? 3 : 0);
        ck_assert_str_eq(patient_response_header(r, "Patient-Change"), "first");
        ck_assert_ptr_null(patient_response_header(r, "X-Late"));
        for (size_t i = 0; i < r->nheaders; i++)
            changes += strcasecmp(r->headers[i].name, "Patient-Change") == 0;
        ck_assert_uint_eq(changes, 1);
        patient_response_free(r);
        r = NULL;

        ck_assert_int_eq(pt_fetch_sink_get(&o, url(paths[k]), &sink, &r, NULL), PATIENT_OK);
        ck_assert_uint_eq(seen.changes, 1);
        ck_assert_int_eq(seen.first, 1);
        ck_assert_uint_eq(seen.late, 0);
        ck_assert_uint_eq(seen.bytes, k == 0 ? 3 : 0);
        ck_assert_str_eq(patient_response_header(r, "Patient-Change"), "first");
        ck_assert_ptr_null(patient_response_header(r, "X-Late"));
        patient_response_free(r);
    }
}
END_TEST

START_TEST(test_redirects)
{
    patient_fetch_opts o = opts();
    patient_response *r = NULL;
    char *detail = NULL;

    o.max_redirects = 3;
    ck_assert_int_eq(patient_fetch(&o, url("/redir/3"), &r, NULL), PATIENT_OK);
    ck_assert_int_eq(r->status, 200);
    ck_assert_str_eq((char *)r->body, "end");
    ck_assert_str_eq(r->url, url("/redir/0"));
    ck_assert_ptr_null(patient_response_header(r, "Location")); /* final response only */
    patient_response_free(r);
    r = NULL;
    o.max_redirects = 2;
    ck_assert_int_eq(patient_fetch(&o, url("/redir/3"), &r, &detail), PATIENT_ERR_FETCH);
    ck_assert_ptr_null(r);
    ck_assert_ptr_nonnull(detail);
    free(detail);
    /* 0: do not follow, report the redirect itself */
    o.max_redirects = 0;
    ck_assert_int_eq(patient_fetch(&o, url("/redir/1"), &r, NULL), PATIENT_OK);
    ck_assert_int_eq(r->status, 302);
    ck_assert_str_eq(patient_response_header(r, "Location"), "/redir/0");
    patient_response_free(r);
    /* directory redirect from http.server itself, default limit */
    ck_assert_int_eq(patient_fetch(NULL, url("/dir"), &r, NULL), PATIENT_OK);
    ck_assert_int_eq(r->status, 200);
    ck_assert_str_eq((char *)r->body, "<p>index</p>\n");
    patient_response_free(r);
}
END_TEST

START_TEST(test_refused_schemes)
{
    patient_response *r = NULL;
    char *detail = NULL;

    ck_assert_int_eq(patient_fetch(NULL, "file:///etc/passwd", &r, &detail), PATIENT_ERR_ARG);
    ck_assert_ptr_null(r);
    free(detail);
    ck_assert_int_eq(patient_fetch(NULL, "ftp://127.0.0.1/x", &r, NULL), PATIENT_ERR_ARG);
    ck_assert_int_eq(patient_fetch(NULL, "gopher://127.0.0.1/x", &r, NULL), PATIENT_ERR_ARG);
    ck_assert_int_eq(patient_fetch(NULL, url("/tofile"), &r, &detail), PATIENT_ERR_FETCH);
    ck_assert_ptr_null(r);
    free(detail);
    ck_assert_int_eq(patient_fetch(NULL, NULL, &r, NULL), PATIENT_ERR_ARG);
}
END_TEST

START_TEST(test_unreachable)
{
    struct sockaddr_in sa = {0};
    socklen_t sl = sizeof sa;
    int s = socket(AF_INET, SOCK_STREAM, 0);
    char u[64], *detail = NULL;
    patient_response *r = NULL;

    /* bound but not listening: connections are refused, no race */
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(s, (struct sockaddr *)&sa, sizeof sa), 0);
    ck_assert_int_eq(getsockname(s, (struct sockaddr *)&sa, &sl), 0);
    snprintf(u, sizeof u, "http://127.0.0.1:%d/", ntohs(sa.sin_port));
    ck_assert_int_eq(patient_fetch(NULL, u, &r, &detail), PATIENT_ERR_FETCH);
    ck_assert_ptr_null(r);
    ck_assert_ptr_nonnull(detail);
    free(detail);
    /* the same refused port as a proxy */
    {
        patient_fetch_opts o = opts();
        o.proxy = u;
        ck_assert_int_eq(patient_fetch(&o, url("/small.txt"), &r, NULL), PATIENT_ERR_FETCH);
    }
    close(s);
}
END_TEST

START_TEST(test_proxy)
{
    patient_fetch_opts o = opts();
    patient_response *r = NULL;

    o.proxy = base;
    ck_assert_int_eq(patient_fetch(&o, "http://proxied.invalid/a?b=1", &r, NULL), PATIENT_OK);
    ck_assert_int_eq(r->status, 200);
    ck_assert_str_eq((char *)r->body, "via proxy http://proxied.invalid/a?b=1");
    patient_response_free(r);
}
END_TEST

START_TEST(test_cache_name)
{
    char name[65];

    patient_cache_name("abc", name);
    ck_assert_str_eq(name, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}
END_TEST

START_TEST(test_cached)
{
    patient_fetch_opts o = opts();
    patient_response *r = NULL;
    char cache[128], path[256], name[65], *log;
    int from = -1;
    struct stat st;

    snprintf(cache, sizeof cache, "%s/cache/patient", tmpdir);
    ck_assert_int_eq(patient_fetch_cached(&o, url("/small.txt"), cache, &r, &from, NULL),
                     PATIENT_OK);
    ck_assert_int_eq(from, 0);
    ck_assert_str_eq((char *)r->body, "hello\n");
    patient_response_free(r);
    ck_assert_int_eq(stat(cache, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0700);
    patient_cache_name(url("/small.txt"), name);
    snprintf(path, sizeof path, "%s/%s.body", cache, name);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0600);
    snprintf(path, sizeof path, "%s/%s.meta", cache, name);
    ck_assert_int_eq(stat(path, &st), 0);

    /* second fetch: conditional request, 304, body from the cache */
    ck_assert_int_eq(patient_fetch_cached(&o, url("/small.txt"), cache, &r, &from, NULL),
                     PATIENT_OK);
    ck_assert_int_eq(from, 1);
    ck_assert_int_eq(r->status, 200);
    ck_assert_str_eq((char *)r->body, "hello\n");
    ck_assert_ptr_nonnull(r->content_type);
    patient_response_free(r);
    log = read_log();
    ck_assert_ptr_nonnull(strstr(log, "/small.txt 200 ims=False"));
    ck_assert_ptr_nonnull(strstr(log, "/small.txt 304 ims=True"));
    free(log);

    /* forged twin: a cache body that no longer matches its meta is not used */
    snprintf(path, sizeof path, "%s/%s.body", cache, name);
    {
        FILE *f = fopen(path, "wb");
        ck_assert_ptr_nonnull(f);
        fputs("HELLO\n", f);
        fclose(f);
    }
    ck_assert_int_eq(patient_fetch_cached(&o, url("/small.txt"), cache, &r, &from, NULL),
                     PATIENT_OK);
    ck_assert_int_eq(from, 0);
    ck_assert_str_eq((char *)r->body, "hello\n");
    patient_response_free(r);

    /* a 404 is not cached */
    ck_assert_int_eq(patient_fetch_cached(&o, url("/nope"), cache, &r, &from, NULL), PATIENT_OK);
    ck_assert_int_eq(r->status, 404);
    patient_response_free(r);
    patient_cache_name(url("/nope"), name);
    snprintf(path, sizeof path, "%s/%s.meta", cache, name);
    ck_assert_int_ne(stat(path, &st), 0);
}
END_TEST

/* A file changed within the second it is served has a weak validator: it
 * is not cached, so a re-publish in the same second is never answered with
 * the stale copy. */
START_TEST(test_cache_weak_validator)
{
    patient_fetch_opts o;
    patient_response *r = NULL;
    int from = -1;
    char cache[128], path[256], name[65], www[256];
    struct stat st;

    patient_fetch_opts_init(&o);
    snprintf(www, sizeof www, "%s/www/fresh.txt", tmpdir);
    {
        FILE *f = fopen(www, "wb");
        ck_assert_ptr_nonnull(f);
        fputs("fresh\n", f);
        fclose(f);
    }
    snprintf(cache, sizeof cache, "%s/cache-weak", tmpdir);
    ck_assert_int_eq(patient_fetch_cached(&o, url("/fresh.txt"), cache, &r, &from, NULL),
                     PATIENT_OK);
    ck_assert_int_eq(r->status, 200);
    ck_assert_int_eq(from, 0);
    patient_response_free(r);
    patient_cache_name(url("/fresh.txt"), name);
    snprintf(path, sizeof path, "%s/%s.meta", cache, name);
    ck_assert_int_ne(stat(path, &st), 0);
}
END_TEST

START_TEST(test_cache_dir_unsafe)
{
    patient_fetch_opts o = opts();
    patient_response *r = NULL;
    char cache[128];

    snprintf(cache, sizeof cache, "%s/shared", tmpdir);
    ck_assert_int_eq(mkdir(cache, 0777), 0);
    ck_assert_int_eq(chmod(cache, 0777), 0);
    ck_assert_int_eq(patient_fetch_cached(&o, url("/small.txt"), cache, &r, NULL, NULL),
                     PATIENT_ERR_PERM);
    ck_assert_ptr_null(r);
}
END_TEST

START_TEST(test_cache_dir_default)
{
    char *d = NULL;

    setenv("XDG_CACHE_HOME", "/c", 1);
    ck_assert_int_eq(patient_cache_dir_default(&d), PATIENT_OK);
    ck_assert_str_eq(d, "/c/patient");
    free(d);
    unsetenv("XDG_CACHE_HOME");
    setenv("HOME", "/h", 1);
    ck_assert_int_eq(patient_cache_dir_default(&d), PATIENT_OK);
    ck_assert_str_eq(d, "/h/.cache/patient");
    free(d);
    unsetenv("HOME");
    ck_assert_int_eq(patient_cache_dir_default(&d), PATIENT_ERR_NOT_FOUND);
}
END_TEST

/* Several GETs in flight on one queue: each comes out as pt_fetcher_get
 * would give it, in whatever order they are waited for; the caps hold
 * transfer by transfer (a body one byte over its own cap is refused while
 * the others complete), a cancelled one frees its handle, a full queue
 * refuses another. */
START_TEST(test_fetchq)
{
    patient_fetch_opts o = opts();
    pt_fetchq *q = NULL;
    pt_buf b[4] = {{0}};
    unsigned id[4], again;
    long status = 0;
    char *detail = NULL;

    ck_assert_int_eq(pt_fetchq_new(&o, 0, 0, &q), PATIENT_ERR_ARG);
    ck_assert_int_eq(pt_fetchq_new(&o, PT_FETCHQ_MAX + 1, 0, &q), PATIENT_ERR_ARG);
    ck_assert_int_eq(pt_fetchq_new(&o, 3, 0, &q), PATIENT_OK);
    ck_assert_int_eq(pt_fetchq_start(q, url("/big.bin"), 100000, &b[0], &id[0], NULL), PATIENT_OK);
    ck_assert_int_eq(pt_fetchq_start(q, url("/big.bin"), 99999, &b[1], &id[1], NULL), PATIENT_OK);
    ck_assert_int_eq(pt_fetchq_start(q, url("/small.txt"), 0, &b[2], &id[2], NULL), PATIENT_OK);
    ck_assert_int_eq(pt_fetchq_start(q, url("/small.txt"), 0, &b[3], &id[3], NULL),
                     PATIENT_ERR_ARG);
    /* the last sent first */
    ck_assert_int_eq(pt_fetchq_wait(q, id[2], &status, &detail), PATIENT_OK);
    ck_assert_ptr_null(detail);
    ck_assert_int_eq(status, 200);
    ck_assert_uint_eq(b[2].len, 6);
    ck_assert_int_eq(memcmp(b[2].data, "hello\n", 6), 0);
    ck_assert_int_eq(pt_fetchq_wait(q, id[2], &status, NULL), PATIENT_ERR_ARG); /* once */
    ck_assert_int_eq(pt_fetchq_wait(q, id[1], &status, &detail), PATIENT_ERR_TOO_LARGE);
    ck_assert_ptr_nonnull(detail);
    free(detail);
    detail = NULL;
    ck_assert_int_eq(pt_fetchq_wait(q, id[0], &status, NULL), PATIENT_OK);
    ck_assert_int_eq(status, 200);
    ck_assert_uint_eq(b[0].len, 100000);
    /* a 404 is a status, as for pt_fetcher_get; a cancelled transfer's
     * handle serves the next */
    ck_assert_int_eq(pt_fetchq_start(q, url("/nope.txt"), 0, &b[0], &id[0], NULL), PATIENT_OK);
    ck_assert_int_eq(pt_fetchq_start(q, url("/big.bin"), 0, &b[1], &id[1], NULL), PATIENT_OK);
    pt_fetchq_cancel(q, id[1]);
    ck_assert_int_eq(pt_fetchq_start(q, url("/small.txt"), 0, &b[2], &again, NULL), PATIENT_OK);
    ck_assert_int_eq(pt_fetchq_start(q, url("/small.txt"), 0, &b[3], &id[3], NULL), PATIENT_OK);
    ck_assert_int_eq(pt_fetchq_wait(q, id[0], &status, NULL), PATIENT_OK);
    ck_assert_int_eq(status, 404);
    ck_assert_int_eq(pt_fetchq_wait(q, again, &status, NULL), PATIENT_OK);
    ck_assert_int_eq(pt_fetchq_wait(q, id[3], &status, NULL), PATIENT_OK);
    ck_assert_uint_eq(b[2].len, 6);
    ck_assert_uint_eq(b[3].len, 6);
    /* only http(s), as everywhere */
    ck_assert_int_eq(pt_fetchq_start(q, "file:///etc/passwd", 0, &b[0], &id[0], &detail),
                     PATIENT_ERR_ARG);
    ck_assert_ptr_nonnull(detail);
    free(detail);
    /* freed with a transfer still in flight */
    ck_assert_int_eq(pt_fetchq_start(q, url("/big.bin"), 0, &b[1], &id[1], NULL), PATIENT_OK);
    pt_fetchq_free(q);
    for (unsigned i = 0; i < 4; i++)
        pt_buf_free(&b[i]);
}
END_TEST

/* The receive buffers (SO_RCVBUF) of this process's TCP connections to
 * the test server, as the kernel reports them, into rb[]; their count. */
static unsigned
server_rcvbufs(int *rb, unsigned max)
{
    int port = atoi(strrchr(base, ':') + 1);
    unsigned n = 0;

    for (int fd = 0; fd < 1024 && n < max; fd++) {
        struct sockaddr_in sa = {0};
        socklen_t sl = sizeof sa, il = sizeof rb[n];
        int type = 0;
        socklen_t tl = sizeof type;
        if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) != 0 || type != SOCK_STREAM ||
            getpeername(fd, (struct sockaddr *)&sa, &sl) != 0 || sa.sin_family != AF_INET ||
            ntohs(sa.sin_port) != port)
            continue;
        ck_assert_int_eq(getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rb[n], &il), 0);
        n++;
    }
    return n;
}

/* What the kernel reports for a socket given SO_RCVBUF v. */
static int
rcvbuf_for(int v)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0), got = 0;
    socklen_t l = sizeof got;

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof v), 0);
    ck_assert_int_eq(getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &got, &l), 0);
    close(fd);
    return got;
}

/* A queue given a window sets it as the receive buffer of its
 * connections, before they connect; a one-off fetch (and a queue given
 * 0) keeps the kernel's autotuning; a window the kernel would cut to
 * net.core.rmem_max is not set at all. Connections to /keep stay open in
 * their caches, so their sockets can be looked at after the transfer. */
START_TEST(test_fetchq_window)
{
    patient_fetch_opts o = opts();
    patient_response *r = NULL;
    pt_fetchq *q = NULL;
    pt_buf b = {0};
    unsigned id;
    long status = 0;
    int rb[4], autotuned, want = 200704, max = -1; /* under Linux's default rmem_max, 212992 */
    FILE *f;

    /* The window set must be one the kernel grants (at most rmem_max),
     * or the queue rightly sets none: a host's lower cap lowers it. */
    if ((f = fopen("/proc/sys/net/core/rmem_max", "r")) != NULL) {
        ck_assert_int_eq(fscanf(f, "%d", &max), 1);
        fclose(f);
        if (max < want)
            want = max;
    }
    ck_assert_int_eq(patient_fetch(&o, url("/keep"), &r, NULL), PATIENT_OK);
    ck_assert_int_eq(r->status, 200);
    patient_response_free(r);
    ck_assert_uint_eq(server_rcvbufs(rb, 4), 1);
    autotuned = rb[0];
    if (autotuned == rcvbuf_for(want)) /* so that a set window can be told from autotuning's */
        want -= 4096;
    if (want < 16384) {
        fprintf(stderr, "check_fetch fetchq_window: net.core.rmem_max is %d, too small "
                        "for a window to tell from autotuning: the set window is not "
                        "checked\n", max);
    } else {
        ck_assert_int_ne(rb[0], rcvbuf_for(want));
        ck_assert_int_eq(pt_fetchq_new(&o, 1, (size_t)want, &q), PATIENT_OK);
        ck_assert_int_eq(pt_fetchq_start(q, url("/keep"), 0, &b, &id, NULL), PATIENT_OK);
        ck_assert_int_eq(pt_fetchq_wait(q, id, &status, NULL), PATIENT_OK);
        ck_assert_int_eq(status, 200);
        ck_assert_uint_eq(b.len, 4);
        ck_assert_uint_eq(server_rcvbufs(rb, 4), 2);
        ck_assert_int_eq((rb[0] == rcvbuf_for(want)) + (rb[1] == rcvbuf_for(want)), 1);
        pt_fetchq_free(q);
        ck_assert_uint_eq(server_rcvbufs(rb, 4), 1);
    }
    /* over the kernel's cap: left to autotuning, not cut to the cap */
    if (max >= 0 && rcvbuf_for(max) == autotuned) {
        fprintf(stderr, "check_fetch fetchq_window: net.core.rmem_max is %d, whose buffer "
                        "is autotuning's: a window over it is not checked\n", max);
    } else if (max >= 0) {
        ck_assert_int_eq(pt_fetchq_new(&o, 1, (size_t)max + 4096, &q), PATIENT_OK);
        ck_assert_int_eq(pt_fetchq_start(q, url("/keep"), 0, &b, &id, NULL), PATIENT_OK);
        ck_assert_int_eq(pt_fetchq_wait(q, id, &status, NULL), PATIENT_OK);
        ck_assert_uint_eq(server_rcvbufs(rb, 4), 2);
        ck_assert_int_ne(rb[0], rcvbuf_for(max));
        ck_assert_int_ne(rb[1], rcvbuf_for(max));
        pt_fetchq_free(q);
    }
    pt_buf_free(&b);
}
END_TEST

/* The socket pt_fetchq_new makes to ask whether the kernel grants its
 * window is close-on-exec, as every descriptor the library opens. */
START_TEST(test_fetchq_window_probe_cloexec)
{
#ifdef SOCK_CLOEXEC
    patient_fetch_opts o = opts();
    pt_fetchq *q = NULL;

    socket_armed = 1;
    ck_assert_int_eq(pt_fetchq_new(&o, 1, 65536, &q), PATIENT_OK);
    socket_armed = 0;
    ck_assert_int_eq(socket_tcp, 1);
    ck_assert_int_eq(socket_inheritable, 0);
    pt_fetchq_free(q);
#endif
}
END_TEST

/* The TCP connections a one-off fetch (direct and through a proxy), a
 * fetcher and the fetch queue make are close-on-exec: libcurl makes its
 * own without SOCK_CLOEXEC. The server answers these paths HTTP/1.0 and
 * closes, so each transfer connects anew. */
START_TEST(test_connections_cloexec)
{
#ifdef SOCK_CLOEXEC
    patient_fetch_opts o = opts();
    patient_response *r = NULL;
    pt_fetcher *f = NULL;
    pt_fetchq *q = NULL;
    pt_buf b = {0};
    unsigned id;
    long status = 0;
    int made;

    socket_armed = 1;
    socket_tcp = socket_inheritable = 0;
    ck_assert_int_eq(patient_fetch(&o, url("/small.txt"), &r, NULL), PATIENT_OK);
    ck_assert_int_eq(r->status, 200);
    patient_response_free(r);
    ck_assert_int_ge(socket_tcp, 1);
    ck_assert_int_eq(socket_inheritable, 0);
    made = socket_tcp;
    o.proxy = base;
    ck_assert_int_eq(patient_fetch(&o, "http://proxied.invalid/c", &r, NULL), PATIENT_OK);
    ck_assert_int_eq(r->status, 200);
    patient_response_free(r);
    o.proxy = NULL;
    ck_assert_int_gt(socket_tcp, made);
    ck_assert_int_eq(socket_inheritable, 0);
    made = socket_tcp;
    ck_assert_int_eq(pt_fetcher_new(&o, &f), PATIENT_OK);
    ck_assert_int_eq(pt_fetcher_get(f, url("/small.txt"), 0, &b, &status, NULL), PATIENT_OK);
    ck_assert_int_eq(status, 200);
    pt_fetcher_free(f);
    ck_assert_int_gt(socket_tcp, made);
    ck_assert_int_eq(socket_inheritable, 0);
    made = socket_tcp;
    ck_assert_int_eq(pt_fetchq_new(&o, 1, 0, &q), PATIENT_OK);
    ck_assert_int_eq(pt_fetchq_start(q, url("/small.txt"), 0, &b, &id, NULL), PATIENT_OK);
    ck_assert_int_eq(pt_fetchq_wait(q, id, &status, NULL), PATIENT_OK);
    ck_assert_int_eq(status, 200);
    pt_fetchq_free(q);
    socket_armed = 0;
    ck_assert_int_gt(socket_tcp, made);
    ck_assert_int_eq(socket_inheritable, 0);
    pt_buf_free(&b);
#endif
}
END_TEST

/* A port bound but not listening (connections refused, no race), as the
 * server and as the proxy: each transfer in flight fails on its own, with
 * libcurl's message, as pt_fetcher_get does; the proxy is used, never
 * bypassed. */
START_TEST(test_fetchq_unreachable)
{
    struct sockaddr_in sa = {0};
    socklen_t sl = sizeof sa;
    int s = socket(AF_INET, SOCK_STREAM, 0);
    patient_fetch_opts o = opts();
    pt_fetchq *q = NULL;
    pt_buf b[2] = {{0}};
    unsigned id[2];
    long status = 1;
    char u[64], *detail = NULL;

    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(s, (struct sockaddr *)&sa, sizeof sa), 0);
    ck_assert_int_eq(getsockname(s, (struct sockaddr *)&sa, &sl), 0);
    snprintf(u, sizeof u, "http://127.0.0.1:%d/", ntohs(sa.sin_port));
    ck_assert_int_eq(pt_fetchq_new(&o, 2, 0, &q), PATIENT_OK);
    ck_assert_int_eq(pt_fetchq_start(q, u, 0, &b[0], &id[0], NULL), PATIENT_OK);
    ck_assert_int_eq(pt_fetchq_start(q, url("/small.txt"), 0, &b[1], &id[1], NULL), PATIENT_OK);
    ck_assert_int_eq(pt_fetchq_wait(q, id[0], &status, &detail), PATIENT_ERR_FETCH);
    ck_assert_int_eq(status, 0);
    ck_assert_ptr_nonnull(detail);
    free(detail);
    ck_assert_int_eq(pt_fetchq_wait(q, id[1], &status, NULL), PATIENT_OK);
    ck_assert_int_eq(status, 200);
    pt_fetchq_free(q);
    o.proxy = u;
    ck_assert_int_eq(pt_fetchq_new(&o, 2, 0, &q), PATIENT_OK);
    ck_assert_int_eq(pt_fetchq_start(q, url("/small.txt"), 0, &b[1], &id[1], NULL), PATIENT_OK);
    ck_assert_int_eq(pt_fetchq_wait(q, id[1], &status, NULL), PATIENT_ERR_FETCH);
    pt_fetchq_free(q);
    pt_buf_free(&b[0]);
    pt_buf_free(&b[1]);
    close(s);
}
END_TEST

static void
tls_server_start(void)
{
    use_tls = 1;
    server_start();
}

START_TEST(test_tls)
{
    patient_fetch_opts o = opts();
    patient_response *r = NULL;
    char ca[128], *detail = NULL;

    /* not signed by a CA we trust: refused, and there is no way around it */
    ck_assert_int_eq(patient_fetch(&o, url("/small.txt"), &r, &detail), PATIENT_ERR_FETCH);
    ck_assert_ptr_null(r);
    ck_assert_ptr_nonnull(detail);
    free(detail);
    snprintf(ca, sizeof ca, "%s/cert.pem", tmpdir);
    o.ca_file = ca;
    ck_assert_int_eq(patient_fetch(&o, url("/small.txt"), &r, NULL), PATIENT_OK);
    ck_assert_int_eq(r->status, 200);
    ck_assert_str_eq((char *)r->body, "hello\n");
    ck_assert_int_eq(r->tls, 1);
    ck_assert_int_eq(r->tls_verified, 1);
    ck_assert_ptr_nonnull(r->tls_version);
    ck_assert_str_eq(r->tls_version, "TLSv1.3");
    ck_assert_ptr_nonnull(r->tls_cipher);
    ck_assert_int_eq(strncmp(r->tls_cipher, "TLS_", 4), 0);
    patient_response_free(r);
    /* the right CA but another name: refused */
    {
        char u[128];
        snprintf(u, sizeof u, "https://localhost:%s/small.txt", strrchr(base, ':') + 1);
        ck_assert_int_eq(patient_fetch(&o, u, &r, NULL), PATIENT_ERR_FETCH);
    }
    /* a fetch queue's transfers too: refused without the CA, fetched with it */
    {
        patient_fetch_opts no = opts();
        pt_fetchq *q = NULL;
        pt_buf b = {0};
        unsigned id;
        long status = 0;
        ck_assert_int_eq(pt_fetchq_new(&no, 1, 0, &q), PATIENT_OK);
        ck_assert_int_eq(pt_fetchq_start(q, url("/small.txt"), 0, &b, &id, NULL), PATIENT_OK);
        ck_assert_int_eq(pt_fetchq_wait(q, id, &status, &detail), PATIENT_ERR_FETCH);
        ck_assert_ptr_nonnull(detail);
        free(detail);
        detail = NULL;
        pt_fetchq_free(q);
        ck_assert_int_eq(pt_fetchq_new(&o, 1, 0, &q), PATIENT_OK);
        ck_assert_int_eq(pt_fetchq_start(q, url("/small.txt"), 0, &b, &id, NULL), PATIENT_OK);
        ck_assert_int_eq(pt_fetchq_wait(q, id, &status, NULL), PATIENT_OK);
        ck_assert_int_eq(status, 200);
        ck_assert_uint_eq(b.len, 6);
        pt_fetchq_free(q);
        pt_buf_free(&b);
    }
    /* never downgraded to http by a redirect: /redir is relative, so stays https */
    o.max_redirects = 2;
    ck_assert_int_eq(patient_fetch(&o, url("/redir/2"), &r, NULL), PATIENT_OK);
    ck_assert_int_eq(strncmp(r->url, "https://", 8), 0);
    patient_response_free(r);
}
END_TEST

static Suite *
fetch_suite(void)
{
    Suite *s = suite_create("fetch");
    TCase *tc;

    tc = tcase_create("http");
    tcase_add_unchecked_fixture(tc, server_start, server_stop);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_ok);
    tcase_add_test(tc, test_status_404);
    tcase_add_test(tc, test_body_cap);
    tcase_add_test(tc, test_header_caps);
    tcase_add_test(tc, test_decoding_and_headers);
    tcase_add_test(tc, test_redirects);
    tcase_add_test(tc, test_trailers_ignored);
    tcase_add_test(tc, test_refused_schemes);
    tcase_add_test(tc, test_unreachable);
    tcase_add_test(tc, test_fetchq);
    tcase_add_test(tc, test_fetchq_unreachable);
    tcase_add_test(tc, test_fetchq_window);
    tcase_add_test(tc, test_fetchq_window_probe_cloexec);
    tcase_add_test(tc, test_connections_cloexec);
    tcase_add_test(tc, test_proxy);
    tcase_add_test(tc, test_cached);
    tcase_add_test(tc, test_cache_weak_validator);
    tcase_add_test(tc, test_cache_dir_unsafe);
    suite_add_tcase(s, tc);
    tc = tcase_create("https");
    tcase_add_unchecked_fixture(tc, tls_server_start, server_stop);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_tls);
    suite_add_tcase(s, tc);
    tc = tcase_create("cache");
    tcase_add_test(tc, test_cache_name);
    tcase_add_test(tc, test_cache_dir_default);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(fetch_suite());
    int failed;

    srunner_set_fork_status(sr, CK_FORK);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed;
}
