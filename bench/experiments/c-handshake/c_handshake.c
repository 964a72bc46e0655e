/*
 * An experiment, not part of Sluice (issue 15, item 2): the WebSocket handshake in C.
 *
 * One I/O thread with its own epoll loop accepts on a listening socket, reads and parses the
 * request head, asks JavaScript once per handshake where it goes (a thread-safe function: the
 * upstream address and the head to send come back as the call's result), connects to the
 * upstream, writes the head with one send(), reads the upstream's 101, writes the 101 to the
 * client with one send(), and hands both descriptors to Sluice's own native relay
 * (native/sluice_tunnel.c, compiled into this addon unchanged: its exports are this addon's
 * exports too), whose end-of-tunnel report is the one report JavaScript gets when the tunnel ends.
 * With start()'s route function null, the round robin and the head are done in C and JavaScript
 * sees nothing of a handshake but that report (the "routing in C" variant, to measure what the
 * JavaScript call costs).
 *
 * What it takes: GET request heads in one buffer of HEAD_MAX bytes, HTTP/1.1, CRLF line ends,
 * Host, Upgrade: websocket, a Connection upgrade token, Sec-WebSocket-Key and -Version; anything
 * else (another method or version, a body, bare CR/LF, control bytes, obs-fold, a duplicate
 * Host/Upgrade/Key, a head too long) gets 400 and a close. An upstream that does not answer 101
 * (or cannot be reached) gets the client a 502. See the README for what Sluice does that this
 * does not.
 *
 * Every descriptor is registered EPOLLONESHOT and at most one of a handshake's two is armed at any
 * time, so an event never finds its handshake freed; a handshake waiting for JavaScript has none
 * armed. Descriptors handed to the relay are disarmed here and leave this epoll set when the relay
 * closes them.
 */
#define _GNU_SOURCE
#include <node_api.h>
/* sluice_tunnel.c's module initializer becomes a plain function this addon's own one calls. */
#undef NAPI_MODULE_INIT
#define NAPI_MODULE_INIT() static napi_value tunnel_module_init(napi_env env, napi_value exports)
#include "../../../native/sluice_tunnel.c"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <strings.h>

#define HEAD_MAX 8192
#define MAX_BACKENDS 16
#define MAX_OTHER 32
#define ACCEPTS_PER_EVENT 128
#define UPSTREAM_HOST_MAX 256

enum { HS_HEAD, HS_ROUTE, HS_CONNECT, HS_SEND_HEAD, HS_RESP, HS_SEND_101 };

typedef struct hs_s hs_t;
typedef struct {
  hs_t *h;
  int side; /* CLIENT, UPSTREAM */
} hs_ref_t;

typedef struct {
  uint16_t off, len;
} span_t;

struct hs_s {
  int fd[2];
  uint8_t reg[2];
  int state;
  uint32_t slot;
  hs_ref_t ref[2];
  /* the request head: in[0, head_len), then early bytes up to in_len */
  size_t in_len, head_len;
  span_t path, host, key, version, protocol, extensions;
  span_t other[MAX_OTHER]; /* other header lines, whole, CRLF included */
  int nother;
  /* the answer: where to, and the bytes to send (upstream head + early bytes, then the 101) */
  uint32_t addr;
  uint16_t port;
  int refuse; /* a status to answer with instead (JavaScript returned no head) */
  uint8_t *out;
  size_t out_len, out_off;
  size_t resp_len;
  hs_t *next;
  char in[HEAD_MAX + 1];
  char resp[HEAD_MAX + 1];
};

static struct {
  int ep, wake, lfd;
  pthread_t thread;
  int started, stop;
  loop_t *tl; /* the relay's loop (sluice_tunnel.c) */
  napi_threadsafe_function tsfn;
  int c_route;
  int32_t *choice; /* [IPv4 address, port], written by the JavaScript route function */
  napi_ref choice_ref;
  uint32_t be_addr[MAX_BACKENDS];
  uint16_t be_port[MAX_BACKENDS];
  int nbe, rr;
  char up_host[UPSTREAM_HOST_MAX];
  int64_t idle_ms;
  pthread_mutex_t mu;
  hs_t *answered, **answered_tail; /* JavaScript thread -> I/O thread, under mu */
  uint32_t *free_slots;            /* under mu */
  size_t nfree, next_slot;
  hs_t *to_js, **to_js_tail;       /* I/O thread only */
  time_t date_at;
  char date[40];
  uint64_t accepted, handed, refused;
} H;

static char LISTEN_TAG, WAKE_TAG;

/* ---- small things ---------------------------------------------------------------------------- */

static int tchar(unsigned char c) {
  if (c >= 'a' && c <= 'z') return 1;
  if (c >= 'A' && c <= 'Z') return 1;
  if (c >= '0' && c <= '9') return 1;
  return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int name_is(const char *p, size_t n, const char *lit) {
  return strlen(lit) == n && strncasecmp(p, lit, n) == 0;
}

/* Whether the comma-separated list p[0, n) holds tok (case-insensitive). */
static int has_token(const char *p, size_t n, const char *tok) {
  size_t m = strlen(tok), i = 0;
  while (i < n) {
    while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == ',')) i++;
    size_t s = i;
    while (i < n && p[i] != ',') i++;
    size_t e = i;
    while (e > s && (p[e - 1] == ' ' || p[e - 1] == '\t')) e--;
    if (e - s == m && strncasecmp(p + s, tok, m) == 0) return 1;
  }
  return 0;
}

static const char *http_date(void) {
  time_t now = time(NULL);
  if (now != H.date_at) {
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(H.date, sizeof H.date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    H.date_at = now;
  }
  return H.date;
}

static void arm(hs_t *h, int side, uint32_t events) {
  struct epoll_event e = {.events = events | EPOLLONESHOT, .data.ptr = &h->ref[side]};
  if (epoll_ctl(H.ep, h->reg[side] ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, h->fd[side], &e) == 0) h->reg[side] = 1;
}

static int take_slot(uint32_t *slot) {
  int ok = 1;
  pthread_mutex_lock(&H.mu);
  if (H.nfree > 0) *slot = H.free_slots[--H.nfree];
  else if (H.next_slot < H.tl->nslots) *slot = (uint32_t)H.next_slot++;
  else ok = 0;
  pthread_mutex_unlock(&H.mu);
  return ok;
}

static void give_slot(uint32_t slot) {
  pthread_mutex_lock(&H.mu);
  H.free_slots[H.nfree++] = slot;
  pthread_mutex_unlock(&H.mu);
}

static void free_hs(hs_t *h) {
  for (int s = 0; s < 2; s++)
    if (h->fd[s] >= 0) close(h->fd[s]);
  if (h->slot != UINT32_MAX) give_slot(h->slot);
  free(h->out);
  free(h);
}

static const char *reason(int status) {
  switch (status) {
    case 400: return "Bad Request";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Bad Gateway";
  }
}

/* Answers status and closes (one send; what the kernel does not take at once is lost). */
static void hs_refuse(hs_t *h, int status) {
  char b[160];
  int n = snprintf(b, sizeof b, "HTTP/1.1 %d %s\r\nServer: sluice\r\nDate: %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                   status, reason(status), http_date());
  ssize_t ignored = send(h->fd[CLIENT], b, (size_t)n, MSG_NOSIGNAL);
  (void)ignored;
  __atomic_add_fetch(&H.refused, 1, __ATOMIC_RELAXED);
  free_hs(h);
}

/* ---- the request head ------------------------------------------------------------------------ */

static span_t span(size_t off, size_t len) {
  span_t s = {(uint16_t)off, (uint16_t)len};
  return s;
}

/* Parses in[0, head_len) (it ends with the first CRLFCRLF); 0: refuse with 400. */
static int parse_head(hs_t *h) {
  const char *b = h->in;
  size_t end = h->head_len, i;
  if (end < 18 || memcmp(b, "GET /", 5) != 0) return 0;
  i = 4;
  size_t ps = i;
  while (b[i] != ' ') {
    unsigned char c = (unsigned char)b[i];
    if (c < 0x21 || c == 0x7f) return 0;
    i++;
  }
  h->path = span(ps, i - ps);
  if (end - i < 11 || memcmp(b + i, " HTTP/1.1\r\n", 11) != 0) return 0;
  i += 11;
  int upgrade = 0, connection = 0;
  for (;;) {
    if (b[i] == '\r') {
      if (b[i + 1] == '\n' && i + 2 == end) break;
      return 0;
    }
    size_t ns = i;
    while (tchar((unsigned char)b[i])) i++;
    if (i == ns || b[i] != ':') return 0; /* obs-fold, a space before the colon, a bad name */
    size_t nl = i - ns;
    i++;
    while (b[i] == ' ' || b[i] == '\t') i++;
    size_t vs = i;
    while (b[i] != '\r') {
      unsigned char c = (unsigned char)b[i];
      if ((c < 0x20 && c != '\t') || c == 0x7f) return 0; /* NUL, bare LF, other controls */
      i++;
    }
    if (b[i + 1] != '\n') return 0; /* bare CR */
    size_t ve = i;
    while (ve > vs && (b[ve - 1] == ' ' || b[ve - 1] == '\t')) ve--;
    i += 2;
    const char *n = b + ns;
    span_t v = span(vs, ve - vs);
    if (name_is(n, nl, "host")) {
      if (h->host.len || v.len == 0) return 0;
      h->host = v;
    } else if (name_is(n, nl, "upgrade")) {
      if (upgrade || !has_token(b + vs, ve - vs, "websocket")) return 0;
      upgrade = 1;
    } else if (name_is(n, nl, "connection")) {
      connection |= has_token(b + vs, ve - vs, "upgrade");
    } else if (name_is(n, nl, "sec-websocket-key")) {
      if (h->key.len || v.len == 0) return 0;
      h->key = v;
    } else if (name_is(n, nl, "sec-websocket-version")) {
      if (h->version.len || v.len == 0) return 0;
      h->version = v;
    } else if (name_is(n, nl, "sec-websocket-protocol")) {
      if (h->protocol.len) return 0;
      h->protocol = v;
    } else if (name_is(n, nl, "sec-websocket-extensions")) {
      if (h->extensions.len) return 0;
      h->extensions = v;
    } else if (name_is(n, nl, "content-length") || name_is(n, nl, "transfer-encoding")) {
      return 0;
    } else {
      if (h->nother == MAX_OTHER) return 0;
      h->other[h->nother++] = span(ns, i - ns);
    }
  }
  return h->host.len && upgrade && connection && h->key.len && h->version.len;
}

/* ---- the handshake's steps ------------------------------------------------------------------- */

static void start_connect(hs_t *h);
static void on_head(hs_t *h);

static void client_readable(hs_t *h) {
  size_t old = h->in_len;
  ssize_t n = recv(h->fd[CLIENT], h->in + h->in_len, HEAD_MAX - h->in_len, 0);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
    arm(h, CLIENT, EPOLLIN);
    return;
  }
  if (n <= 0) {
    free_hs(h);
    return;
  }
  h->in_len += (size_t)n;
  h->in[h->in_len] = 0;
  size_t from = old > 3 ? old - 3 : 0;
  char *e = memmem(h->in + from, h->in_len - from, "\r\n\r\n", 4);
  if (!e) {
    if (h->in_len == HEAD_MAX) hs_refuse(h, 400);
    else arm(h, CLIENT, EPOLLIN);
    return;
  }
  h->head_len = (size_t)(e - h->in) + 4;
  on_head(h);
}

/* The upstream head, built in C (the routing-in-C variant): what the JavaScript route function builds. */
static int build_head_c(hs_t *h) {
  const char *b = h->in;
  size_t early = h->in_len - h->head_len;
  size_t cap = 256 + strlen(H.up_host) + h->path.len + h->key.len + h->version.len + h->protocol.len + h->extensions.len + early;
  for (int k = 0; k < h->nother; k++) cap += h->other[k].len;
  h->out = malloc(cap);
  if (!h->out) return 0;
  char *o = (char *)h->out;
  int n = snprintf(o, cap, "GET %.*s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: upgrade\r\nSec-WebSocket-Key: %.*s\r\nSec-WebSocket-Version: %.*s\r\n",
                   h->path.len, b + h->path.off, H.up_host, h->key.len, b + h->key.off, h->version.len, b + h->version.off);
  size_t len = (size_t)n;
  if (h->protocol.len) len += (size_t)snprintf(o + len, cap - len, "Sec-WebSocket-Protocol: %.*s\r\n", h->protocol.len, b + h->protocol.off);
  if (h->extensions.len) len += (size_t)snprintf(o + len, cap - len, "Sec-WebSocket-Extensions: %.*s\r\n", h->extensions.len, b + h->extensions.off);
  for (int k = 0; k < h->nother; k++) {
    memcpy(o + len, b + h->other[k].off, h->other[k].len);
    len += h->other[k].len;
  }
  memcpy(o + len, "\r\n", 2);
  len += 2;
  memcpy(o + len, b + h->head_len, early);
  h->out_len = len + early;
  return 1;
}

static void on_head(hs_t *h) {
  if (!parse_head(h)) {
    hs_refuse(h, 400);
    return;
  }
  if (!take_slot(&h->slot)) {
    hs_refuse(h, 503);
    return;
  }
  if (H.c_route) {
    h->addr = H.be_addr[H.rr];
    h->port = H.be_port[H.rr];
    H.rr = (H.rr + 1) % H.nbe;
    if (!build_head_c(h)) {
      hs_refuse(h, 500);
      return;
    }
    start_connect(h);
    return;
  }
  h->state = HS_ROUTE;
  h->next = NULL;
  *H.to_js_tail = h;
  H.to_js_tail = &h->next;
}

static void send_head(hs_t *h) {
  ssize_t n = send(h->fd[UPSTREAM], h->out + h->out_off, h->out_len - h->out_off, MSG_NOSIGNAL);
  if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
    hs_refuse(h, 502);
    return;
  }
  if (n > 0) h->out_off += (size_t)n;
  if (h->out_off < h->out_len) {
    h->state = HS_SEND_HEAD;
    arm(h, UPSTREAM, EPOLLOUT);
    return;
  }
  free(h->out);
  h->out = NULL;
  h->out_len = h->out_off = 0;
  h->state = HS_RESP;
  arm(h, UPSTREAM, EPOLLIN);
}

static void start_connect(hs_t *h) {
  h->fd[UPSTREAM] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (h->fd[UPSTREAM] < 0) {
    hs_refuse(h, 502);
    return;
  }
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(h->port), .sin_addr.s_addr = htonl(h->addr)};
  if (connect(h->fd[UPSTREAM], (struct sockaddr *)&sa, sizeof sa) == 0) {
    send_head(h);
    return;
  }
  if (errno != EINPROGRESS) {
    hs_refuse(h, 502);
    return;
  }
  h->state = HS_CONNECT;
  arm(h, UPSTREAM, EPOLLOUT);
}

/* Both descriptors go to the relay as adopt() would hand them over (a WebSocket tunnel at a frame boundary, no guardrails). */
static void hand_over(hs_t *h) {
  int one = 1;
  setsockopt(h->fd[CLIENT], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  setsockopt(h->fd[UPSTREAM], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  tunnel_t *t = calloc(1, sizeof *t);
  cmd_t *c = calloc(1, sizeof *c);
  report_t *r = malloc(sizeof *r);
  if (!t || !c || !r) {
    free(t);
    free(c);
    free(r);
    free_hs(h);
    return;
  }
  t->report = r;
  for (int s = 0; s < 2; s++) {
    t->d[s].track = 1;
    t->d[s].cur.need = 2;
    t->fd[s] = h->fd[s];
    h->fd[s] = -1;
  }
  t->slot = h->slot;
  h->slot = UINT32_MAX;
  t->first_close = -1;
  t->idle_ms = H.idle_ms;
  t->ref[0].t = t;
  t->ref[0].side = CLIENT;
  t->ref[1].t = t;
  t->ref[1].side = UPSTREAM;
  H.tl->counters[t->slot * 2] = 0;
  H.tl->counters[t->slot * 2 + 1] = 0;
  c->kind = CMD_ADOPT;
  c->t = t;
  push_command(H.tl, c, 0);
  __atomic_add_fetch(&H.handed, 1, __ATOMIC_RELAXED);
  free_hs(h);
}

static void send_101(hs_t *h) {
  ssize_t n = send(h->fd[CLIENT], h->out + h->out_off, h->out_len - h->out_off, MSG_NOSIGNAL);
  if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
    free_hs(h);
    return;
  }
  if (n > 0) h->out_off += (size_t)n;
  if (h->out_off < h->out_len) {
    h->state = HS_SEND_101;
    arm(h, CLIENT, EPOLLOUT);
    return;
  }
  hand_over(h);
}

/* The upstream's answer: a 101 goes to the client with Sluice's Server and Date after its status line. */
static void upstream_readable(hs_t *h) {
  size_t old = h->resp_len;
  ssize_t n = recv(h->fd[UPSTREAM], h->resp + h->resp_len, HEAD_MAX - h->resp_len, 0);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
    arm(h, UPSTREAM, EPOLLIN);
    return;
  }
  if (n <= 0) {
    hs_refuse(h, 502);
    return;
  }
  h->resp_len += (size_t)n;
  size_t from = old > 3 ? old - 3 : 0;
  char *e = memmem(h->resp + from, h->resp_len - from, "\r\n\r\n", 4);
  if (!e) {
    if (h->resp_len == HEAD_MAX) hs_refuse(h, 502);
    else arm(h, UPSTREAM, EPOLLIN);
    return;
  }
  if (h->resp_len < 13 || memcmp(h->resp, "HTTP/1.1 101", 12) != 0 || (h->resp[12] != ' ' && h->resp[12] != '\r')) {
    hs_refuse(h, 502);
    return;
  }
  char *eol = memmem(h->resp, h->resp_len, "\r\n", 2);
  size_t line = (size_t)(eol - h->resp) + 2;
  char own[96];
  int ol = snprintf(own, sizeof own, "Server: sluice\r\nDate: %s\r\n", http_date());
  h->out = malloc(h->resp_len + (size_t)ol);
  if (!h->out) {
    hs_refuse(h, 500);
    return;
  }
  memcpy(h->out, h->resp, line);
  memcpy(h->out + line, own, (size_t)ol);
  memcpy(h->out + line + ol, h->resp + line, h->resp_len - line);
  h->out_len = h->resp_len + (size_t)ol;
  h->out_off = 0;
  send_101(h);
}

static void on_hs_event(hs_ref_t *ref, uint32_t events) {
  hs_t *h = ref->h;
  switch (h->state) {
    case HS_HEAD:
      client_readable(h);
      break;
    case HS_CONNECT: {
      int err = 0;
      socklen_t len = sizeof err;
      if (getsockopt(h->fd[UPSTREAM], SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) hs_refuse(h, 502);
      else send_head(h);
      break;
    }
    case HS_SEND_HEAD:
      send_head(h);
      break;
    case HS_RESP:
      upstream_readable(h);
      break;
    case HS_SEND_101:
      send_101(h);
      break;
    default:
      break;
  }
}

static void on_accept(void) {
  for (int k = 0; k < ACCEPTS_PER_EVENT; k++) {
    int fd = accept4(H.lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) break; /* EAGAIN, or EMFILE and the like: the next event tries again */
    hs_t *h = malloc(sizeof *h);
    if (!h) {
      close(fd);
      continue;
    }
    memset(h, 0, offsetof(hs_t, in));
    h->fd[CLIENT] = fd;
    h->fd[UPSTREAM] = -1;
    h->slot = UINT32_MAX;
    h->ref[0].h = h;
    h->ref[0].side = CLIENT;
    h->ref[1].h = h;
    h->ref[1].side = UPSTREAM;
    h->state = HS_HEAD;
    __atomic_add_fetch(&H.accepted, 1, __ATOMIC_RELAXED);
    /* the client usually wrote its head with the connect: read at once, register only if it has not */
    client_readable(h);
  }
}

static void run_answers(void) {
  uint64_t v;
  while (read(H.wake, &v, sizeof v) > 0) {
  }
  pthread_mutex_lock(&H.mu);
  hs_t *h = H.answered;
  H.answered = NULL;
  H.answered_tail = &H.answered;
  pthread_mutex_unlock(&H.mu);
  while (h) {
    hs_t *next = h->next;
    if (h->refuse) hs_refuse(h, h->refuse);
    else start_connect(h);
    h = next;
  }
}

/* The handshakes parsed in this turn go to JavaScript in one call of the thread-safe function. */
static void post_routes(void) {
  if (!H.to_js) return;
  if (napi_call_threadsafe_function(H.tsfn, H.to_js, napi_tsfn_nonblocking) != napi_ok) return;
  H.to_js = NULL;
  H.to_js_tail = &H.to_js;
}

static void *hs_thread(void *arg) {
  (void)arg;
  struct epoll_event evs[MAX_EVENTS];
  pthread_setname_np(pthread_self(), "chs-handshake"); /* for per-thread CPU figures (threads.mjs) */
  while (!__atomic_load_n(&H.stop, __ATOMIC_ACQUIRE)) {
    int n = epoll_wait(H.ep, evs, MAX_EVENTS, H.to_js ? REPORT_RETRY_MS : -1);
    for (int i = 0; i < n; i++) {
      void *p = evs[i].data.ptr;
      if (p == &LISTEN_TAG) on_accept();
      else if (p == &WAKE_TAG) run_answers();
      else on_hs_event(p, evs[i].events);
    }
    post_routes();
  }
  return NULL;
}

/* ---- JavaScript side ------------------------------------------------------------------------- */

static napi_value str_or_undefined(napi_env env, const char *b, span_t s, int always) {
  napi_value v;
  if (s.len == 0 && !always) napi_get_undefined(env, &v);
  else napi_create_string_latin1(env, b + s.off, s.len, &v);
  return v;
}

/* route(slot, path, host, key, version, protocol?, extensions?, otherHeaderLines) -> upstream head
 * (a string; the upstream's address is in choice[0..1]) or a status to answer with. */
static void call_route(napi_env env, napi_value js_cb, void *context, void *data) {
  hs_t *list = data;
  hs_t *first = NULL, **tail = &first;
  while (list) {
    hs_t *h = list;
    list = h->next;
    h->next = NULL;
    if (env == NULL || js_cb == NULL) {
      free_hs(h);
      continue;
    }
    napi_handle_scope scope;
    napi_open_handle_scope(env, &scope);
    const char *b = h->in;
    char other[HEAD_MAX];
    size_t olen = 0;
    for (int k = 0; k < h->nother; k++) {
      memcpy(other + olen, b + h->other[k].off, h->other[k].len);
      olen += h->other[k].len;
    }
    napi_value argv[8], undef, result;
    napi_create_uint32(env, h->slot, &argv[0]);
    argv[1] = str_or_undefined(env, b, h->path, 1);
    argv[2] = str_or_undefined(env, b, h->host, 1);
    argv[3] = str_or_undefined(env, b, h->key, 1);
    argv[4] = str_or_undefined(env, b, h->version, 1);
    argv[5] = str_or_undefined(env, b, h->protocol, 0);
    argv[6] = str_or_undefined(env, b, h->extensions, 0);
    napi_create_string_latin1(env, other, olen, &argv[7]);
    napi_get_undefined(env, &undef);
    h->refuse = 500;
    if (napi_call_function(env, undef, js_cb, 8, argv, &result) == napi_ok) {
      napi_valuetype t;
      napi_typeof(env, result, &t);
      size_t len = 0;
      if (t == napi_string && napi_get_value_string_latin1(env, result, NULL, 0, &len) == napi_ok) {
        size_t early = h->in_len - h->head_len;
        h->out = malloc(len + 1 + early);
        if (h->out) {
          napi_get_value_string_latin1(env, result, (char *)h->out, len + 1, &len);
          memcpy(h->out + len, h->in + h->head_len, early);
          h->out_len = len + early;
          h->addr = (uint32_t)H.choice[0];
          h->port = (uint16_t)H.choice[1];
          h->refuse = 0;
        }
      } else if (t == napi_number) {
        int32_t status = 502;
        napi_get_value_int32(env, result, &status);
        h->refuse = status;
      }
    } else {
      napi_value ignored;
      napi_get_and_clear_last_exception(env, &ignored);
    }
    napi_close_handle_scope(env, scope);
    *tail = h;
    tail = &h->next;
  }
  if (!first) return;
  pthread_mutex_lock(&H.mu);
  int was_empty = H.answered == NULL;
  *H.answered_tail = first;
  H.answered_tail = tail;
  pthread_mutex_unlock(&H.mu);
  if (was_empty) {
    uint64_t one = 1;
    ssize_t ignored = write(H.wake, &one, sizeof one);
    (void)ignored;
  }
}

#define HS_THROW(env, msg)                      \
  do {                                          \
    napi_throw_error((env), "ECHS", (msg));     \
    return NULL;                                \
  } while (0)

/*
 * start({ route: fn | null, choice: Int32Array(2), backends: [ipv4, port, ...], upstreamHost,
 * idleMs, host, port }) -> the port it listens on. init() (the relay's) first.
 */
static napi_value Start(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value o;
  napi_get_cb_info(env, info, &argc, &o, NULL, NULL);
  loop_t *L = loop_of(env);
  if (!L->started) HS_THROW(env, "c_handshake: the relay's init() first");
  if (H.started) HS_THROW(env, "c_handshake: start() was already called");
  if (argc < 1) HS_THROW(env, "c_handshake: start(options)");
  H.tl = L;
  napi_value v;
  napi_valuetype vt;
  napi_get_named_property(env, o, "route", &v);
  napi_typeof(env, v, &vt);
  H.c_route = vt != napi_function;
  napi_get_named_property(env, o, "backends", &v);
  uint32_t n = 0;
  napi_get_array_length(env, v, &n);
  double be[2 * MAX_BACKENDS];
  if (n < 2 || n > 2 * MAX_BACKENDS || n % 2 || !read_numbers(env, v, be, n)) HS_THROW(env, "c_handshake: backends is [ipv4, port, ...]");
  H.nbe = (int)n / 2;
  for (int k = 0; k < H.nbe; k++) {
    H.be_addr[k] = (uint32_t)be[2 * k];
    H.be_port[k] = (uint16_t)be[2 * k + 1];
  }
  napi_get_named_property(env, o, "upstreamHost", &v);
  size_t hl = 0;
  if (napi_get_value_string_latin1(env, v, H.up_host, sizeof H.up_host, &hl) != napi_ok) HS_THROW(env, "c_handshake: upstreamHost is a string");
  napi_get_named_property(env, o, "idleMs", &v);
  double idle = 0;
  napi_get_value_double(env, v, &idle);
  H.idle_ms = idle > 0 ? (int64_t)idle : 0;
  napi_get_named_property(env, o, "port", &v);
  uint32_t port = 0;
  napi_get_value_uint32(env, v, &port);
  char host[64] = "127.0.0.1";
  napi_get_named_property(env, o, "host", &v);
  napi_typeof(env, v, &vt);
  if (vt == napi_string) napi_get_value_string_latin1(env, v, host, sizeof host, &hl);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) HS_THROW(env, "c_handshake: host is an IPv4 address");

  napi_value route;
  napi_get_named_property(env, o, "route", &route);
  if (!H.c_route) {
    napi_value choice;
    napi_get_named_property(env, o, "choice", &choice);
    napi_typedarray_type type;
    size_t length;
    void *data;
    if (napi_get_typedarray_info(env, choice, &type, &length, &data, NULL, NULL) != napi_ok || type != napi_int32_array || length < 2)
      HS_THROW(env, "c_handshake: choice is an Int32Array(2)");
    napi_create_reference(env, choice, 1, &H.choice_ref);
    H.choice = data;
    napi_value name;
    napi_create_string_utf8(env, "c_handshake", NAPI_AUTO_LENGTH, &name);
    if (napi_create_threadsafe_function(env, route, NULL, name, 0, 1, NULL, NULL, NULL, call_route, &H.tsfn) != napi_ok)
      HS_THROW(env, "c_handshake: could not create the thread-safe function");
  }
  H.free_slots = malloc(L->nslots * sizeof *H.free_slots);
  H.lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(H.lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (!H.free_slots || H.lfd < 0 || bind(H.lfd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(H.lfd, 511) != 0)
    HS_THROW(env, "c_handshake: could not listen");
  socklen_t sl = sizeof sa;
  getsockname(H.lfd, (struct sockaddr *)&sa, &sl);
  H.ep = epoll_create1(EPOLL_CLOEXEC);
  H.wake = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  struct epoll_event le = {.events = EPOLLIN, .data.ptr = &LISTEN_TAG};
  struct epoll_event we = {.events = EPOLLIN, .data.ptr = &WAKE_TAG};
  if (H.ep < 0 || H.wake < 0 || epoll_ctl(H.ep, EPOLL_CTL_ADD, H.lfd, &le) != 0 || epoll_ctl(H.ep, EPOLL_CTL_ADD, H.wake, &we) != 0)
    HS_THROW(env, "c_handshake: epoll/eventfd failed");
  if (pthread_create(&H.thread, NULL, hs_thread, NULL) != 0) HS_THROW(env, "c_handshake: could not start the I/O thread");
  H.started = 1;
  napi_value r;
  napi_create_uint32(env, ntohs(sa.sin_port), &r);
  return r;
}

/* release(slots): the slots of ended tunnels, free again (JavaScript has read their reports). */
static napi_value Release(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value arr;
  napi_get_cb_info(env, info, &argc, &arr, NULL, NULL);
  uint32_t n = 0;
  napi_get_array_length(env, arr, &n);
  pthread_mutex_lock(&H.mu);
  for (uint32_t i = 0; i < n; i++) {
    napi_value e;
    uint32_t slot;
    napi_get_element(env, arr, i, &e);
    if (napi_get_value_uint32(env, e, &slot) == napi_ok && H.tl && slot < H.tl->nslots && H.nfree < H.tl->nslots) H.free_slots[H.nfree++] = slot;
  }
  pthread_mutex_unlock(&H.mu);
  return NULL;
}

static napi_value HsStats(napi_env env, napi_callback_info info) {
  napi_value o;
  napi_create_object(env, &o);
  set_number(env, o, "accepted", (double)__atomic_load_n(&H.accepted, __ATOMIC_RELAXED));
  set_number(env, o, "handedOver", (double)__atomic_load_n(&H.handed, __ATOMIC_RELAXED));
  set_number(env, o, "refused", (double)__atomic_load_n(&H.refused, __ATOMIC_RELAXED));
  return o;
}

/* Runs before the relay's own cleanup (hooks run in reverse order): the handshake thread stops first. */
static void hs_cleanup(void *arg) {
  (void)arg;
  if (!H.started) return;
  __atomic_store_n(&H.stop, 1, __ATOMIC_RELEASE);
  uint64_t one = 1;
  ssize_t ignored = write(H.wake, &one, sizeof one);
  (void)ignored;
  pthread_join(H.thread, NULL);
  if (!H.c_route) napi_release_threadsafe_function(H.tsfn, napi_tsfn_abort);
  close(H.lfd);
  close(H.ep);
  close(H.wake);
  H.started = 0;
}

EXTERN_C_START
NAPI_MODULE_EXPORT int32_t NODE_API_MODULE_GET_API_VERSION(void) {
  return NAPI_VERSION;
}
NAPI_MODULE_EXPORT napi_value NAPI_MODULE_INITIALIZER(napi_env env, napi_value exports);
EXTERN_C_END
napi_value NAPI_MODULE_INITIALIZER(napi_env env, napi_value exports) {
  exports = tunnel_module_init(env, exports);
  if (exports == NULL) return NULL;
  pthread_mutex_init(&H.mu, NULL);
  H.answered_tail = &H.answered;
  H.to_js_tail = &H.to_js;
  H.ep = H.wake = H.lfd = -1;
  napi_add_env_cleanup_hook(env, hs_cleanup, NULL);
  napi_property_descriptor props[] = {
    {"start", NULL, Start, NULL, NULL, NULL, napi_default, NULL},
    {"release", NULL, Release, NULL, NULL, NULL, napi_default, NULL},
    {"handshakeStats", NULL, HsStats, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}
