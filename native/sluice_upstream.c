/*
 * The upstream leg of a proxied WebSocket handshake, on the relay's I/O thread (issue 15, item 2).
 *
 * JavaScript routes the handshake and builds the upstream request head as it always did; instead
 * of making a net.Socket for it, it calls legStart(), and this thread:
 *
 *  1. makes a non-blocking socket (TCP_NODELAY, as Node's connect with noDelay and as nginx sets
 *     it on an upgraded connection) and connects to the server's IPv4 or IPv6 address under
 *     proxy_connect_timeout;
 *  2. writes the head with one send (proxy_send_timeout while the kernel does not take it all);
 *  3. reads the response head under proxy_read_timeout (refreshed by every read, as the socket
 *     timeout of the lean client is), until an empty line ends it (CRLF or bare LF line ends,
 *     as nginx reads an upstream head), the server closes, or proxy_buffer_size is full;
 *  4. reports to JavaScript in a batch, one thread-safe function call per turn of its loop:
 *     a failure (connect refused or timed out, reset...) with the socket closed here, or the
 *     descriptor with every byte read, which JavaScript then owns.
 *
 * JavaScript parses those bytes with the lean client's parser: a 101 it accepts goes to adopt()
 * with the descriptor as it is (no dup: the relay takes it over, still registered in this epoll,
 * disarmed) and the bytes after the head as the first bytes for the client; anything else becomes
 * a net.Socket on that descriptor, and the lean client reads on from there with those bytes first.
 *
 * Every leg ends in exactly one report (JavaScript frees the leg's id on it), a cancelled one too.
 * Only this thread touches a started leg; JavaScript talks to it through the command queue.
 */
#define _GNU_SOURCE
#include "sluice_upstream.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_LEGS 65536
#define REPORT_RETRY_MS 10

enum { S_CONNECTING, S_SENDING, S_READING, S_DONE };

/* Report kinds (native-legs.ts reads them). */
/* K_SEND_TIMEOUT is not reported (a head the kernel does not take is timed as a read, see send_head) */
enum { K_HEAD = 0, K_CONNECT_FAILED, K_CONNECT_TIMEOUT, K_SEND_FAILED, K_SEND_TIMEOUT, K_READ_FAILED, K_READ_TIMEOUT, K_CANCELLED };

typedef struct report_s {
  uint32_t id;
  int kind, err, fd;
  double connect_ms;
  size_t received;   /* bytes read (handed over with a head, dropped with a failure) */
  uint8_t *bytes;
  size_t len;
  struct report_s *next;
} report_t;

typedef struct leg_s {
  void *none;        /* NULL, where a side_ref_t has its tunnel */
  int side;          /* SLUICE_LEG_SIDE */
  uint32_t id;
  int fd, state, registered;
  struct sockaddr_storage addr;
  socklen_t addr_len;
  uint8_t *req;
  size_t req_len, req_off;
  uint8_t *buf;
  size_t len, cap;
  int64_t started_us, connected_us;
  int64_t deadline, connect_ms, read_ms;
  report_t *report;  /* allocated with the leg: ending never needs memory */
  struct leg_s *prev, *next; /* the active list (deadlines) */
  struct leg_s *next_dead;
} leg_t;

enum { C_START, C_CANCEL };

typedef struct cmd_s {
  int kind;
  uint32_t id;
  leg_t *leg;
  struct cmd_s *next;
} cmd_t;

struct legs_s {
  int ep, wake;
  pthread_mutex_t mu;
  cmd_t *head, *tail;
  int wake_owed;     /* JavaScript thread only */
  napi_threadsafe_function tsfn;
  int started;
  /* I/O thread only */
  leg_t **by_id;
  leg_t *active, *dead;
  report_t *reports, **reports_tail;
  int64_t now;
  /* figures (written by the I/O thread, read by legStats()) */
  uint64_t n_started, n_heads, n_failed, n_cancelled;
};

static int64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static inline void count(uint64_t *f) {
  __atomic_store_n(f, __atomic_load_n(f, __ATOMIC_RELAXED) + 1, __ATOMIC_RELAXED);
}

legs_t *legs_create(void) {
  legs_t *G = calloc(1, sizeof *G);
  if (!G) return NULL;
  pthread_mutex_init(&G->mu, NULL);
  G->ep = G->wake = -1;
  G->reports_tail = &G->reports;
  return G;
}

void legs_bind(legs_t *G, int ep, int wake) {
  if (!G) return;
  G->ep = ep;
  G->wake = wake;
}

/* A deadline `ms` from now; 0 is none (socket.setTimeout(0), as the lean client's timer takes it). */
static inline int64_t after(int64_t now, int64_t ms) {
  return ms > 0 ? now + ms : INT64_MAX;
}

static void free_leg(leg_t *g) {
  free(g->req);
  free(g->buf);
  free(g->report);
  free(g);
}

/* ---- the I/O thread ---------------------------------------------------------------------------- */

static void unlink_active(legs_t *G, leg_t *g) {
  if (g->prev) g->prev->next = g->next;
  else if (G->active == g) G->active = g->next;
  if (g->next) g->next->prev = g->prev;
  g->prev = g->next = NULL;
}

/* Ends the leg with its report; `keep_fd`: the descriptor goes to JavaScript with it. */
static void finish(legs_t *G, leg_t *g, int kind, int err, int keep_fd) {
  if (g->state == S_DONE) return;
  g->state = S_DONE;
  unlink_active(G, g);
  if (G->by_id[g->id] == g) G->by_id[g->id] = NULL;
  report_t *r = g->report;
  g->report = NULL;
  r->received = g->len;
  r->id = g->id;
  r->kind = kind;
  r->err = err;
  r->connect_ms = g->connected_us ? (double)(g->connected_us - g->started_us) / 1000.0 : -1;
  r->bytes = NULL;
  r->len = 0;
  r->next = NULL;
  if (keep_fd) {
    /* Left registered, disarmed (EPOLLONESHOT): adopt() rearms it with EPOLL_CTL_MOD. */
    r->fd = g->fd;
    r->bytes = g->buf;
    r->len = g->len;
    g->buf = NULL;
    count(&G->n_heads);
  } else {
    r->fd = -1;
    if (g->fd >= 0) close(g->fd); /* closing leaves epoll too */
    count(kind == K_CANCELLED ? &G->n_cancelled : &G->n_failed);
  }
  g->fd = -1;
  *G->reports_tail = r;
  G->reports_tail = &r->next;
  /* freed after the batch: an event of this batch may still point at it */
  g->next_dead = G->dead;
  G->dead = g;
}

static int arm(legs_t *G, leg_t *g, uint32_t events) {
  struct epoll_event ev = {.events = events | EPOLLONESHOT, .data.ptr = g};
  int r = epoll_ctl(G->ep, g->registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, g->fd, &ev);
  if (r == 0) g->registered = 1;
  return r;
}

static void start_reading(legs_t *G, leg_t *g);

static void send_head(legs_t *G, leg_t *g) {
  while (g->req_off < g->req_len) {
    ssize_t w = send(g->fd, g->req + g->req_off, g->req_len - g->req_off, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN) {
        finish(G, g, K_SEND_FAILED, errno, 0);
        return;
      }
      /* The lean client's socket timer once the head is handed to the socket: proxy_read_timeout
       * (proxy_send_timeout times a request body only), so the failure is a read timeout too. */
      if (g->state != S_SENDING) g->deadline = after(G->now, g->read_ms);
      g->state = S_SENDING;
      if (arm(G, g, EPOLLOUT) != 0) finish(G, g, K_SEND_FAILED, errno, 0);
      return;
    }
    g->req_off += (size_t)w;
  }
  free(g->req);
  g->req = NULL;
  start_reading(G, g);
}

static void start_reading(legs_t *G, leg_t *g) {
  g->state = S_READING;
  g->deadline = after(G->now, g->read_ms);
  if (arm(G, g, EPOLLIN) != 0) finish(G, g, K_READ_FAILED, errno, 0);
}

/* Whether an empty line ends the head in buf[0..len), looking from `from` on. */
static int head_ends(const uint8_t *buf, size_t from, size_t len) {
  for (size_t i = from; i < len; i++) {
    if (buf[i] != '\n' || i == 0) continue;
    if (buf[i - 1] == '\n') return 1;
    if (buf[i - 1] == '\r' && i >= 2 && buf[i - 2] == '\n') return 1;
  }
  return 0;
}

static void read_head(legs_t *G, leg_t *g) {
  for (;;) {
    if (g->len == g->cap) {
      /* proxy_buffer_size is full: the lean client's parser says what that is */
      finish(G, g, K_HEAD, 0, 1);
      return;
    }
    ssize_t n = recv(g->fd, g->buf + g->len, g->cap - g->len, MSG_DONTWAIT);
    if (n > 0) {
      size_t from = g->len > 2 ? g->len - 2 : 0;
      g->len += (size_t)n;
      g->deadline = after(G->now, g->read_ms);
      if (head_ends(g->buf, from, g->len)) {
        finish(G, g, K_HEAD, 0, 1);
        return;
      }
      continue;
    }
    if (n == 0) {
      /* The server closed before the head ended: the lean client reads that end again. */
      finish(G, g, K_HEAD, 0, 1);
      return;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN) {
      if (arm(G, g, EPOLLIN) != 0) finish(G, g, K_READ_FAILED, errno, 0);
      return;
    }
    finish(G, g, K_READ_FAILED, errno, 0);
    return;
  }
}

static void connected(legs_t *G, leg_t *g) {
  g->connected_us = now_us();
  send_head(G, g);
}

static void start_leg(legs_t *G, leg_t *g) {
  g->report->next = NULL;
  if (G->by_id[g->id]) {
    /* JavaScript never reuses an id before its report: refused, not leaked */
    free_leg(g);
    return;
  }
  G->by_id[g->id] = g;
  g->next = G->active;
  if (G->active) G->active->prev = g;
  G->active = g;
  g->state = S_CONNECTING;
  g->deadline = G->now + g->connect_ms;
  count(&G->n_started);
  g->fd = socket(g->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (g->fd < 0) {
    finish(G, g, K_CONNECT_FAILED, errno, 0);
    return;
  }
  int one = 1;
  setsockopt(g->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(g->fd, (struct sockaddr *)&g->addr, g->addr_len) == 0) {
    connected(G, g);
    return;
  }
  if (errno != EINPROGRESS) {
    finish(G, g, K_CONNECT_FAILED, errno, 0);
    return;
  }
  /* Over loopback (and often to a near server) the connection is up by now: the head goes at
   * once, and only a connect still in progress (EAGAIN: the socket is in SYN_SENT) waits for
   * EPOLLOUT. An error here is the connect's (a refusal already came back). Saves an epoll_ctl,
   * a getsockopt and a wake-up of this thread per handshake. */
  ssize_t w = send(g->fd, g->req, g->req_len, MSG_NOSIGNAL | MSG_DONTWAIT);
  if (w >= 0) {
    g->req_off = (size_t)w;
    connected(G, g);
    return;
  }
  if (errno != EAGAIN && errno != EINTR) {
    finish(G, g, K_CONNECT_FAILED, errno, 0);
    return;
  }
  if (arm(G, g, EPOLLOUT) != 0) finish(G, g, K_CONNECT_FAILED, errno, 0);
}

void legs_commands(legs_t *G) {
  if (!G) return;
  G->now = now_us() / 1000;
  pthread_mutex_lock(&G->mu);
  cmd_t *c = G->head;
  G->head = G->tail = NULL;
  pthread_mutex_unlock(&G->mu);
  while (c) {
    cmd_t *next = c->next;
    if (c->kind == C_START) {
      start_leg(G, c->leg);
    } else if (c->id < MAX_LEGS && G->by_id[c->id]) {
      finish(G, G->by_id[c->id], K_CANCELLED, 0, 0);
    }
    free(c);
    c = next;
  }
}

void legs_event(legs_t *G, void *ptr, uint32_t events) {
  leg_t *g = ptr;
  if (g->state == S_DONE) return;
  G->now = now_us() / 1000;
  if (g->state == S_CONNECTING) {
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(g->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    if (err) finish(G, g, K_CONNECT_FAILED, err, 0);
    else connected(G, g);
  } else if (g->state == S_SENDING) {
    send_head(G, g);
  } else if (g->state == S_READING) {
    read_head(G, g);
  }
}

int legs_timeout(legs_t *G, int timeout) {
  if (!G) return timeout;
  if (G->reports && (timeout < 0 || timeout > REPORT_RETRY_MS)) timeout = REPORT_RETRY_MS;
  if (!G->active) return timeout;
  int64_t now = now_us() / 1000;
  for (leg_t *g = G->active; g; g = g->next) {
    int64_t left = g->deadline - now;
    if (left < 0) left = 0;
    if (left > INT32_MAX) left = INT32_MAX;
    if (timeout < 0 || left < timeout) timeout = (int)left;
  }
  return timeout;
}

static void post(legs_t *G) {
  if (!G->reports) return;
  if (napi_call_threadsafe_function(G->tsfn, G->reports, napi_tsfn_nonblocking) != napi_ok) return;
  G->reports = NULL;
  G->reports_tail = &G->reports;
}

void legs_after(legs_t *G) {
  if (!G) return;
  if (G->active) {
    G->now = now_us() / 1000;
    leg_t *g = G->active;
    while (g) {
      leg_t *next = g->next;
      if (g->deadline <= G->now) {
        int kind = g->state == S_CONNECTING ? K_CONNECT_TIMEOUT : K_READ_TIMEOUT;
        finish(G, g, kind, ETIMEDOUT, 0);
      }
      g = next;
    }
  }
  while (G->dead) {
    leg_t *g = G->dead;
    G->dead = g->next_dead;
    free_leg(g);
  }
  if (G->started) post(G);
}

/* ---- JavaScript side --------------------------------------------------------------------------- */

static void free_reports(report_t *r) {
  while (r) {
    report_t *next = r->next;
    free(r->bytes);
    free(r);
    r = next;
  }
}

/* onReports([id, kind, errno, fd, connectMs, received, bytes | null, ...]) */
static void call_js(napi_env env, napi_value js_cb, void *context, void *data) {
  report_t *list = data;
  if (env != NULL && js_cb != NULL) {
    napi_value arr, undef, v;
    napi_create_array(env, &arr);
    napi_get_null(env, &undef);
    uint32_t i = 0;
    for (report_t *r = list; r; r = r->next) {
      const double f[6] = {r->id, r->kind, r->err, r->fd, r->connect_ms, (double)r->received};
      for (int k = 0; k < 6; k++) {
        napi_create_double(env, f[k], &v);
        napi_set_element(env, arr, i++, v);
      }
      if (r->kind == K_HEAD) napi_create_buffer_copy(env, r->len, r->len ? r->bytes : (const uint8_t *)"", NULL, &v);
      else v = undef;
      napi_set_element(env, arr, i++, v);
    }
    napi_get_undefined(env, &undef);
    napi_call_function(env, undef, js_cb, 1, &arr, NULL);
  } else {
    /* the environment is going away: nobody takes the descriptors */
    for (report_t *r = list; r; r = r->next) {
      if (r->fd >= 0) close(r->fd);
    }
  }
  free_reports(list);
}

static legs_t *legs_of(napi_env env, napi_callback_info info, size_t *argc, napi_value *argv) {
  void *data = NULL;
  napi_get_cb_info(env, info, argc, argv, NULL, &data);
  return data;
}

static napi_value js_bool(napi_env env, int v) {
  napi_value r;
  napi_get_boolean(env, v, &r);
  return r;
}

/* legInit(onReports): after init() (the I/O thread runs). */
static napi_value LegInit(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  legs_t *G = legs_of(env, info, &argc, argv);
  if (!G || G->started || argc < 1 || G->ep < 0) return js_bool(env, 0);
  G->by_id = calloc(MAX_LEGS, sizeof *G->by_id);
  if (!G->by_id) return js_bool(env, 0);
  napi_value name;
  napi_create_string_utf8(env, "sluice_upstream", NAPI_AUTO_LENGTH, &name);
  if (napi_create_threadsafe_function(env, argv[0], NULL, name, 0, 1, NULL, NULL, G, call_js, &G->tsfn) != napi_ok) return js_bool(env, 0);
  napi_unref_threadsafe_function(env, G->tsfn);
  /* by_id and tsfn are published to the I/O thread by the first command's mutex */
  pthread_mutex_lock(&G->mu);
  G->started = 1;
  pthread_mutex_unlock(&G->mu);
  return js_bool(env, 1);
}

static void push(legs_t *G, cmd_t *c, int defer) {
  c->next = NULL;
  pthread_mutex_lock(&G->mu);
  int was_empty = G->head == NULL;
  if (G->tail) G->tail->next = c;
  else G->head = c;
  G->tail = c;
  pthread_mutex_unlock(&G->mu);
  if (defer) {
    if (was_empty) G->wake_owed = 1;
    return;
  }
  if (was_empty || G->wake_owed) {
    G->wake_owed = 0;
    uint64_t one = 1;
    ssize_t ignored = write(G->wake, &one, sizeof one);
    (void)ignored;
  }
}

/*
 * legStart(id, family, address, port, head: latin1 string, connectMs, sendMs, readMs, maxHead, defer) -> boolean.
 * False (nothing started) when the address does not parse or memory is short: JavaScript connects
 * itself then. With `defer` the thread is woken by legWake(), once for the turn's legs.
 */
static napi_value LegStart(napi_env env, napi_callback_info info) {
  size_t argc = 10;
  napi_value argv[10];
  legs_t *G = legs_of(env, info, &argc, argv);
  if (!G || !G->started || argc < 9) return js_bool(env, 0);
  uint32_t id, family, port, max_head;
  double cms, sms, rms;
  char host[64];
  size_t host_len = 0;
  napi_get_value_uint32(env, argv[0], &id);
  napi_get_value_uint32(env, argv[1], &family);
  if (napi_get_value_string_latin1(env, argv[2], host, sizeof host, &host_len) != napi_ok) return js_bool(env, 0);
  napi_get_value_uint32(env, argv[3], &port);
  napi_get_value_double(env, argv[5], &cms);
  napi_get_value_double(env, argv[6], &sms);
  napi_get_value_double(env, argv[7], &rms);
  napi_get_value_uint32(env, argv[8], &max_head);
  if (id >= MAX_LEGS || port > 65535) return js_bool(env, 0);
  leg_t *g = calloc(1, sizeof *g);
  if (!g) return js_bool(env, 0);
  g->side = SLUICE_LEG_SIDE;
  g->id = id;
  g->fd = -1;
  if (family == 6) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&g->addr;
    a->sin6_family = AF_INET6;
    a->sin6_port = htons((uint16_t)port);
    /* a scoped address (fe80::1%eth0) is left to JavaScript */
    if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1) goto refuse;
    g->addr_len = sizeof *a;
  } else {
    struct sockaddr_in *a = (struct sockaddr_in *)&g->addr;
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &a->sin_addr) != 1) goto refuse;
    g->addr_len = sizeof *a;
  }
  size_t n = 0;
  if (napi_get_value_string_latin1(env, argv[4], NULL, 0, &n) != napi_ok) goto refuse;
  g->req = malloc(n + 1);
  g->cap = max_head > 0 ? max_head : 4096;
  g->buf = malloc(g->cap);
  g->report = malloc(sizeof *g->report);
  if (!g->req || !g->buf || !g->report) goto refuse;
  napi_get_value_string_latin1(env, argv[4], (char *)g->req, n + 1, &g->req_len);
  /* As the lean client's timers: the connect timer's 0 fires at once (a setTimeout of 1 ms), the
   * socket's 0 is no timeout at all */
  g->connect_ms = cms >= 1 ? (int64_t)cms : 1;
  g->read_ms = rms > 0 ? (int64_t)rms : 0;
  (void)sms;
  g->started_us = now_us();
  cmd_t *c = calloc(1, sizeof *c);
  if (!c) goto refuse;
  c->kind = C_START;
  c->id = id;
  c->leg = g;
  bool defer = false;
  if (argc > 9) napi_get_value_bool(env, argv[9], &defer);
  push(G, c, defer);
  return js_bool(env, 1);
refuse:
  free_leg(g);
  return js_bool(env, 0);
}

/* legCancel(id): the leg ends (its socket closed) with a K_CANCELLED report, unless it reported already. */
static napi_value LegCancel(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  legs_t *G = legs_of(env, info, &argc, argv);
  if (!G || !G->started || argc < 1) return js_bool(env, 0);
  cmd_t *c = calloc(1, sizeof *c);
  if (!c) return js_bool(env, 0);
  c->kind = C_CANCEL;
  napi_get_value_uint32(env, argv[0], &c->id);
  push(G, c, 0);
  return js_bool(env, 1);
}

/* legWake(): wakes the I/O thread for the legs started with `defer`; false when none was owed. */
static napi_value LegWake(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  legs_t *G = legs_of(env, info, &argc, NULL);
  if (!G || !G->started || !G->wake_owed) return js_bool(env, 0);
  G->wake_owed = 0;
  uint64_t one = 1;
  ssize_t ignored = write(G->wake, &one, sizeof one);
  (void)ignored;
  return js_bool(env, 1);
}

/* legRef(on): whether legs in flight keep the event loop alive. */
static napi_value LegRef(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  legs_t *G = legs_of(env, info, &argc, argv);
  bool on = false;
  if (argc > 0) napi_get_value_bool(env, argv[0], &on);
  if (G && G->started) {
    if (on) napi_ref_threadsafe_function(env, G->tsfn);
    else napi_unref_threadsafe_function(env, G->tsfn);
  }
  return js_bool(env, on);
}

static void set_number(napi_env env, napi_value obj, const char *key, uint64_t *f) {
  napi_value n;
  napi_create_double(env, (double)__atomic_load_n(f, __ATOMIC_RELAXED), &n);
  napi_set_named_property(env, obj, key, n);
}

/* legStats(): legs started, answered (a head or a close handed to JavaScript), failed, cancelled. */
static napi_value LegStats(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  legs_t *G = legs_of(env, info, &argc, NULL);
  napi_value o;
  napi_create_object(env, &o);
  if (!G) return o;
  set_number(env, o, "started", &G->n_started);
  set_number(env, o, "answered", &G->n_heads);
  set_number(env, o, "failed", &G->n_failed);
  set_number(env, o, "cancelled", &G->n_cancelled);
  return o;
}

void legs_define(napi_env env, napi_value exports, legs_t *G) {
  if (!G) return;
  napi_property_descriptor props[] = {
    {"legInit", NULL, LegInit, NULL, NULL, NULL, napi_default, G},
    {"legStart", NULL, LegStart, NULL, NULL, NULL, napi_default, G},
    {"legCancel", NULL, LegCancel, NULL, NULL, NULL, napi_default, G},
    {"legWake", NULL, LegWake, NULL, NULL, NULL, napi_default, G},
    {"legRef", NULL, LegRef, NULL, NULL, NULL, napi_default, G},
    {"legStats", NULL, LegStats, NULL, NULL, NULL, napi_default, G},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}

void legs_destroy(legs_t *G) {
  if (!G) return;
  while (G->active) {
    leg_t *g = G->active;
    G->active = g->next;
    if (g->fd >= 0) close(g->fd);
    free_leg(g);
  }
  while (G->dead) {
    leg_t *g = G->dead;
    G->dead = g->next_dead;
    free_leg(g);
  }
  for (report_t *r = G->reports; r; r = r->next) {
    if (r->fd >= 0) close(r->fd);
  }
  free_reports(G->reports);
  cmd_t *c = G->head;
  while (c) {
    cmd_t *next = c->next;
    if (c->leg) free_leg(c->leg);
    free(c);
    c = next;
  }
  if (G->started) napi_release_threadsafe_function(G->tsfn, napi_tsfn_abort);
  free(G->by_id);
  pthread_mutex_destroy(&G->mu);
  free(G);
}
