/*
 * Accepting in the addon (issue 15, item 2): plain-TCP listening sockets are watched by the
 * relay's I/O thread (native/sluice_tunnel.c, one epoll), which accepts their connections
 * (accept4, non-blocking, a batch per wake-up) and reads their first bytes itself: the request
 * head usually came with the connect, and a client that sends it late is waited for on the same
 * epoll until the head is complete, the head cannot be a WebSocket handshake (the first bytes are
 * not "GET "), the buffer (the listener's header limit) is full, the client ends, or
 * client_header_timeout passes. Then the connection is reported to JavaScript, in batches (one
 * call of a thread-safe function per wake-up): its descriptor (from then on JavaScript's), the
 * peer address accept gave, and the bytes read (src/server/native-accept.ts).
 *
 * It also watches client descriptors JavaScript holds while a handshake waits for its upstream: a
 * client that goes away (EPOLLRDHUP, EPOLLHUP, EPOLLERR) is reported once. A connection whose head
 * looks like a handshake is handed over watched already: its registration here (a connection
 * whose head came late has one) becomes the watch's, so the descriptor keeps one registration in
 * this epoll from accept to the tunnel, which the relay takes as it is when it adopts the client
 * (accept_take_watch). A watch is EPOLLONESHOT: once it fired it stays registered, disarmed, until
 * it is ended: by JavaScript (unwatch) before its descriptor becomes a net.Socket or is closed, or
 * by the relay taking it (adopt). An event the I/O thread reads after that is recognised as stale
 * by the watch's generation, which is in its epoll tag and in its report.
 *
 * Threads: the I/O thread runs accept_event/accept_tick; JavaScript calls the exported functions.
 * The connections being read and the reports are the I/O thread's alone; the listeners' table is
 * under `A.mu` (a listener is never closed under an accept), the watches' under `A.wmu`, so a
 * watch started or ended by JavaScript never waits for an accept batch.
 * Epoll tags: the relay registers pointers (even); everything here has bit 0 set, bit 1 for a
 * listener, bit 2 for a watch, neither for a connection being read (a pointer | 1).
 *
 * Sharing a listening socket with other worker processes (`accept_mutex off`, the primary's
 * socket): the worker whose I/O thread wakes first would sweep the backlog (ACCEPT_BATCH a
 * wake-up) before the others are scheduled, and a burst of long-lived connections would stay where
 * it landed. So the workers share a table of their open connections (a file the primary made and
 * passed to each, mapped here: acceptShare), and a worker holding more than its share steps back
 * from its balanced listeners for SHARE_PAUSE_MS at a time, as nginx's ngx_accept_disabled does
 * at 7/8 of worker_connections, but against the other workers' counts: its share is the least
 * loaded worker's count plus a slack. A worker that has waited SHARE_WAIT_MS over its share
 * while the others accepted nothing accepts again (they are stopped, or starved), until they
 * accept again or it is back within its share. Each worker's count is what JavaScript holds
 * (published by acceptLoad) and what was accepted here and has not reached it yet.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <strings.h>
#include <node_api.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sluice_accept.h"

#define MAX_LISTENERS 256
/* Out of descriptors (EMFILE, ENFILE), a listener stops being watched for this long, as nginx
 * disables accept events for a while: a level-triggered listener would wake the thread at once. */
#define ACCEPT_PAUSE_MS 100
#define MAX_WATCHES 65536
/* Connections accepted per listener per wake-up; the rest stay in the backlog for the next (the
 * listener is level-triggered), so one busy address cannot starve the tunnels. */
#define ACCEPT_BATCH 64
/* The shared table of the workers' loads (see the top): one slot per worker index. */
#define SHARE_SLOTS 64
/* Over its share, a worker's balanced listeners leave its epoll for this long at a time... */
#define SHARE_PAUSE_MS 1
/* ...and after this long over its share with the others taking nothing, it accepts regardless
 * (they are stopped, or starved)... */
#define SHARE_WAIT_MS 100
/* ...where a wait ends when this worker has not looked for this long (the backlog emptied). */
#define SHARE_GAP_MS 20

/* REP_UPGRADE: a complete head that looks like a WebSocket handshake (a GET with an Upgrade
 * header line), which JavaScript parses before deciding; REP_CONN: anything else. */
enum { REP_CONN = 0, REP_TIMEOUT = 1, REP_GONE = 2, REP_UPGRADE = 3 };

typedef struct conn_s {
  int fd;
  uint32_t lid;   /* the listener's id as JavaScript knows it (generation and slot) */
  int64_t deadline;
  uint8_t *buf;
  size_t len, cap;
  char addr[INET6_ADDRSTRLEN];
  int port;
  char laddr[INET6_ADDRSTRLEN]; /* the local address, for a wildcard listener only ("" otherwise) */
  int lport;
  int held;       /* counted in its listener's held_empty (1) or held_partial (2), 0: not held */
  struct conn_s *prev, *next;
} conn_t;

typedef struct report_s {
  int kind;
  uint32_t lid;
  int fd;       /* REP_CONN, REP_TIMEOUT: the client's descriptor; REP_GONE: the watch */
  int port;
  double watch; /* REP_UPGRADE: the watch on the descriptor (its id, as acceptWatch's), -1: none */
  char addr[INET6_ADDRSTRLEN];
  int lport;
  char laddr[INET6_ADDRSTRLEN];
  uint8_t *buf;
  size_t len;
  struct report_s *next;
} report_t;

typedef struct {
  int fd;       /* our duplicate of the listening socket, -1: free */
  int64_t timeout_ms;
  size_t max_head;
  int wild;     /* bound to 0.0.0.0 or :: : each connection's local address is asked for */
  uint32_t gen; /* bumped at each listen: the id JavaScript knows is (gen << 8) | slot */
  int64_t resume_at; /* out of descriptors, or over its share: off the epoll until then (0: on it) */
  int balanced; /* shared with other workers: accepts only within this worker's share */
  /* Connections accepted and not yet reported, with nothing read yet (nginx counts them as
   * waiting) and with part of a head (reading): written by the I/O thread, read by stub_status. */
  int held_empty, held_partial;
} listener_t;

typedef struct {
  int fd;       /* the client's descriptor (JavaScript's), -1: free */
  uint32_t gen;
} watch_t;

static struct {
  pthread_mutex_t mu, wmu;
  int ep;
  int ready;
  napi_threadsafe_function tsfn;
  listener_t lst[MAX_LISTENERS];
  watch_t *watches;
  uint32_t *free_watches;
  uint32_t nfree, next_watch;
  conn_t *waiting;            /* connections whose head is still being read (I/O thread) */
  int64_t next_deadline;      /* the first of their deadlines, 0: none */
  int64_t next_resume;        /* the first paused listener's resume_at, 0: none */
  report_t *reports, **tail;  /* not yet handed to JavaScript */
  double accepted, handed;    /* figures for stats() */
  uint8_t *scratch;           /* the I/O thread's read buffer (the largest header limit) */
  size_t scratch_len;
} A = {.mu = PTHREAD_MUTEX_INITIALIZER, .wmu = PTHREAD_MUTEX_INITIALIZER, .ep = -1};

/* One worker's slot in the shared table (the primary zeroes it when the worker exits), 32 bytes:
 * the connections its JavaScript holds (`load`) and has taken from this addon (`taken`), both
 * written by JavaScript at once (acceptLoad); the connections accepted here (`accepted`, counted
 * by the I/O thread); whether it accepts on a balanced listener. Its open connections are
 * load + accepted - taken: those JavaScript holds, and those accepted and not yet in its hands
 * (being read, or in a report on its way), so a worker whose JavaScript lags behind a burst
 * counts what it accepted as soon as it did. */
typedef struct {
  int64_t load;
  int64_t taken;
  int64_t accepted;
  int32_t active;
  int32_t unused;
} share_slot_t;

static inline int64_t slot_load(const share_slot_t *s) {
  return __atomic_load_n(&s->load, __ATOMIC_RELAXED) + __atomic_load_n(&s->accepted, __ATOMIC_RELAXED) - __atomic_load_n(&s->taken, __ATOMIC_RELAXED);
}

/* The shared table (NULL: this process shares no socket with others) and this worker's slot;
 * written by JavaScript's thread (acceptShare, acceptLoad, acceptListen, acceptStop) and the I/O
 * thread (accepts), atomically. The I/O thread's own: `over_since`, when this worker's current
 * wait over its share began; `over_last`, when it last found itself over; `others_seen`, what the
 * other workers had accepted when that wait began (see over_share). */
static struct {
  share_slot_t *slots;
  int me;
  int balanced;
  int64_t over_since;
  int64_t over_last;
  int64_t others_seen;
} S = {.slots = NULL, .me = -1};

static inline uint64_t listener_tag(uint32_t lid) { return ((uint64_t)lid << 3) | 3; }
static inline uint64_t watch_tag(uint32_t idx, uint32_t gen) { return ((uint64_t)gen << 32) | ((uint64_t)idx << 3) | 5; }

/* ---- watches (either thread, under A.wmu) -------------------------------------------------------- */

static void free_watch(watch_t *w) {
  w->fd = -1;
  A.free_watches[A.nfree++] = (uint32_t)(w - A.watches);
}

/* Starts watching `fd` for its client going away: `op` EPOLL_CTL_ADD, or EPOLL_CTL_MOD to turn the
 * descriptor's registration here into the watch's. Its id (generation * MAX_WATCHES + slot), or -1.
 * The system call is made outside the mutex (the other thread takes it for each adopt): no one
 * knows the id before this returns, and no event comes under the tag before the call. */
static double start_watch(int fd, int op) {
  pthread_mutex_lock(&A.wmu);
  int idx = -1;
  if (A.nfree > 0) idx = (int)A.free_watches[--A.nfree];
  else if (A.next_watch < MAX_WATCHES) idx = (int)A.next_watch++;
  uint32_t gen = 0;
  if (idx >= 0) {
    watch_t *w = &A.watches[idx];
    w->fd = fd;
    gen = w->gen = (w->gen + 1) & 0xfffffff;
  }
  pthread_mutex_unlock(&A.wmu);
  if (idx < 0) return -1;
  struct epoll_event ev = {.events = EPOLLRDHUP | EPOLLONESHOT, .data.u64 = watch_tag((uint32_t)idx, gen)};
  if (epoll_ctl(A.ep, op, fd, &ev) != 0) {
    pthread_mutex_lock(&A.wmu);
    free_watch(&A.watches[idx]);
    pthread_mutex_unlock(&A.wmu);
    return -1;
  }
  return (double)gen * MAX_WATCHES + idx;
}

/* The live watch `id` names (caller holds A.wmu), or NULL: ended already, or never one. */
static watch_t *live_watch(double id) {
  if (!(id >= 0)) return NULL;
  uint32_t idx = (uint32_t)((uint64_t)id % MAX_WATCHES);
  uint32_t gen = (uint32_t)((uint64_t)id / MAX_WATCHES);
  if (idx >= A.next_watch || A.watches[idx].fd < 0 || A.watches[idx].gen != gen) return NULL;
  return &A.watches[idx];
}

/* Ends a watch, fired or not: its descriptor leaves this epoll (before it is closed or becomes
 * libuv's: the caller holds it open until this returns, so the DEL may follow the slot's release,
 * outside the mutex; an event of it read meanwhile finds the slot free or reused and is dropped).
 * 0 when it was ended already. */
static int end_watch(double id) {
  pthread_mutex_lock(&A.wmu);
  watch_t *w = live_watch(id);
  int fd = w ? w->fd : -1;
  if (w) free_watch(w);
  pthread_mutex_unlock(&A.wmu);
  if (fd >= 0) epoll_ctl(A.ep, EPOLL_CTL_DEL, fd, NULL);
  return fd >= 0;
}

int accept_take_watch(double id, int fd) {
  pthread_mutex_lock(&A.wmu);
  watch_t *w = live_watch(id);
  int ok = w != NULL && w->fd == fd;
  /* The slot is free from here: an event of the watch the I/O thread reads before the relay
   * modifies the registration finds it free, or another generation in it, and is dropped
   * (on_watch), and a report of it queued before is dropped by JavaScript (forget). */
  if (ok) free_watch(w);
  pthread_mutex_unlock(&A.wmu);
  return ok;
}

/* ---- the I/O thread ---------------------------------------------------------------------------- */

static report_t *queue_report(int kind, conn_t *c, int fd) {
  report_t *r = calloc(1, sizeof *r);
  if (!r) return NULL;
  r->kind = kind;
  r->fd = fd;
  r->watch = -1;
  if (c) {
    r->lid = c->lid;
    r->port = c->port;
    memcpy(r->addr, c->addr, sizeof r->addr);
    r->lport = c->lport;
    memcpy(r->laddr, c->laddr, sizeof r->laddr);
    r->buf = c->buf;
    r->len = c->len;
    c->buf = NULL;
  }
  *A.tail = r;
  A.tail = &r->next;
  return r;
}

static void unlink_waiting(conn_t *c) {
  if (c->prev) c->prev->next = c->next;
  else if (A.waiting == c) A.waiting = c->next;
  if (c->next) c->next->prev = c->prev;
  c->prev = c->next = NULL;
}

/* Moves a held connection between its listener's counts (`to` 0: no longer held). A connection
 * of a listener stopped since (another generation in the slot) is not counted anywhere. */
static void count_held(conn_t *c, int to) {
  listener_t *l = &A.lst[c->lid & 0xff];
  int mine = l->fd >= 0 && ((l->gen << 8) | (c->lid & 0xff)) == c->lid;
  if (mine && c->held == 1) __atomic_fetch_sub(&l->held_empty, 1, __ATOMIC_RELAXED);
  if (mine && c->held == 2) __atomic_fetch_sub(&l->held_partial, 1, __ATOMIC_RELAXED);
  if (mine && to == 1) __atomic_fetch_add(&l->held_empty, 1, __ATOMIC_RELAXED);
  if (mine && to == 2) __atomic_fetch_add(&l->held_partial, 1, __ATOMIC_RELAXED);
  c->held = to;
}

/* The connection goes to JavaScript, its descriptor JavaScript's: off this epoll, or, when it
 * looks like a handshake, watched (its registration, if it has one, becomes the watch's). */
static int looks_like_upgrade(const uint8_t *p, size_t n);

static void hand_over(conn_t *c, int kind, int registered) {
  if (kind == REP_CONN && looks_like_upgrade(c->buf, c->len)) kind = REP_UPGRADE;
  double watch = -1;
  if (kind == REP_UPGRADE) watch = start_watch(c->fd, registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD);
  if (registered) {
    if (watch < 0) epoll_ctl(A.ep, EPOLL_CTL_DEL, c->fd, NULL);
    unlink_waiting(c);
    count_held(c, 0);
  }
  report_t *r = queue_report(kind, c, c->fd);
  if (r) {
    r->watch = watch;
  } else {
    /* Out of memory: JavaScript never hears of the descriptor, closed here. */
    if (watch >= 0) end_watch(watch);
    close(c->fd);
  }
  A.handed++;
  free(c->buf);
  free(c);
}

/* Whether the bytes so far may still be a WebSocket handshake's head: they start as "GET " does. */
static int may_be_handshake(const uint8_t *p, size_t n) {
  static const char get[] = "GET ";
  size_t m = n < 4 ? n : 4;
  return memcmp(p, get, m) == 0;
}

/* An empty line: CRLF CRLF, or with bare LFs, which llhttp takes too (front/bare-lf.ts). */
static int head_complete(const uint8_t *p, size_t n) {
  for (const uint8_t *q = memchr(p, '\n', n); q; q = memchr(q + 1, '\n', n - (size_t)(q + 1 - p))) {
    size_t left = n - (size_t)(q + 1 - p);
    if (left >= 1 && q[1] == '\n') return 1;
    if (left >= 2 && q[1] == '\r' && q[2] == '\n') return 1;
  }
  return 0;
}

/* A complete "GET " head with an Upgrade header line (any case). */
static int looks_like_upgrade(const uint8_t *p, size_t n) {
  if (n < 4 || memcmp(p, "GET ", 4) != 0 || !head_complete(p, n)) return 0;
  for (const uint8_t *q = memchr(p, '\n', n); q; q = memchr(q + 1, '\n', n - (size_t)(q + 1 - p))) {
    size_t left = n - (size_t)(q + 1 - p);
    if (left >= 8 && strncasecmp((const char *)q + 1, "upgrade:", 8) == 0) return 1;
    if (left >= 1 && (q[1] == '\n' || q[1] == '\r')) return 0;
  }
  return 0;
}

/* Reads what has arrived; 1 when the connection is ready for JavaScript (head complete, not a
 * handshake, full, ended or failed), 0 to wait for more. */
static int read_more(conn_t *c) {
  for (;;) {
    if (c->len == c->cap) return 1;
    /* Into the thread's scratch buffer, then kept at the size read: a connection that sends
     * nothing (or a little at a time) holds no header-sized buffer while it waits. */
    if (A.scratch_len < c->cap) {
      uint8_t *grown = realloc(A.scratch, c->cap);
      if (!grown) return 1;
      A.scratch = grown;
      A.scratch_len = c->cap;
    }
    ssize_t n = recv(c->fd, A.scratch, c->cap - c->len, 0);
    if (n > 0) {
      uint8_t *kept = realloc(c->buf, c->len + (size_t)n);
      if (!kept) return 1;
      memcpy(kept + c->len, A.scratch, (size_t)n);
      c->buf = kept;
      c->len += (size_t)n;
      if (!may_be_handshake(c->buf, c->len) || head_complete(c->buf, c->len)) return 1;
      continue;
    }
    if (n == 0) return 1;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
    /* A reset: JavaScript's socket finds out for itself, as it would have. */
    return 1;
  }
}

/* The listener leaves the epoll until `now + ms` (accept_tick puts it back). */
static void pause_listener(listener_t *l, int64_t now, int64_t ms) {
  epoll_ctl(A.ep, EPOLL_CTL_DEL, l->fd, NULL);
  l->resume_at = now + ms;
  if (A.next_resume == 0 || l->resume_at < A.next_resume) A.next_resume = l->resume_at;
}

/* Whether this worker should leave the next connection of a balanced listener to the others: it
 * holds more than the least loaded active worker plus a slack (an eighth, at least 2), and the
 * others have accepted something in the last SHARE_WAIT_MS it spent waiting for them. A wait
 * starts again whenever they accept (they are taking connections: this worker keeps stepping
 * back), and when this worker has not looked for longer than SHARE_GAP_MS: stepping back from a
 * backlog it looks every SHARE_PAUSE_MS, so a longer silence means the backlog emptied and the
 * last wait is over; the next connection, maybe a burst later, starts a wait of its own. */
static int over_share(int64_t now) {
  int64_t mine = slot_load(&S.slots[S.me]);
  int64_t least = -1, others = 0;
  for (int i = 0; i < SHARE_SLOTS; i++) {
    if (i == S.me || !__atomic_load_n(&S.slots[i].active, __ATOMIC_RELAXED)) continue;
    int64_t c = slot_load(&S.slots[i]);
    if (least < 0 || c < least) least = c;
    others += __atomic_load_n(&S.slots[i].accepted, __ATOMIC_RELAXED);
  }
  int64_t slack = least / 8 < 2 ? 2 : least / 8;
  if (least < 0 || mine <= least + slack) {
    S.over_since = 0;
    return 0;
  }
  if (S.over_since == 0 || now - S.over_last > SHARE_GAP_MS || others != S.others_seen) {
    S.over_since = now;
    S.others_seen = others;
  }
  S.over_last = now;
  return now - S.over_since < SHARE_WAIT_MS;
}

static void on_accept(uint32_t lid, int64_t now) {
  listener_t *l = &A.lst[lid];
  for (int i = 0; i < ACCEPT_BATCH && l->fd >= 0; i++) {
    if (l->balanced && S.slots && over_share(now)) {
      pause_listener(l, now, SHARE_PAUSE_MS);
      return;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    int fd = accept4(l->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      /* The backlog waits until descriptors may be free again. */
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) pause_listener(l, now, ACCEPT_PAUSE_MS);
      /* EAGAIN: the backlog is empty; ECONNABORTED and the like: gone before it was taken. */
      if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO) continue;
      return;
    }
    A.accepted++;
    /* Every listener's: JavaScript counts every connection it takes. */
    if (S.slots) __atomic_fetch_add(&S.slots[S.me].accepted, 1, __ATOMIC_RELAXED);
    conn_t *c = calloc(1, sizeof *c);
    if (!c) {
      close(fd);
      continue;
    }
    c->fd = fd;
    c->lid = (l->gen << 8) | lid;
    c->cap = l->max_head;
    /* What libuv's accept does for a server with noDelay (Node's HTTP server has it). */
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (l->wild) {
      struct sockaddr_storage ls;
      socklen_t ll = sizeof ls;
      if (getsockname(fd, (struct sockaddr *)&ls, &ll) == 0) {
        if (ls.ss_family == AF_INET) {
          inet_ntop(AF_INET, &((struct sockaddr_in *)&ls)->sin_addr, c->laddr, sizeof c->laddr);
          c->lport = ntohs(((struct sockaddr_in *)&ls)->sin_port);
        } else if (ls.ss_family == AF_INET6) {
          inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ls)->sin6_addr, c->laddr, sizeof c->laddr);
          c->lport = ntohs(((struct sockaddr_in6 *)&ls)->sin6_port);
        }
      }
    }
    if (ss.ss_family == AF_INET) {
      struct sockaddr_in *a = (struct sockaddr_in *)&ss;
      inet_ntop(AF_INET, &a->sin_addr, c->addr, sizeof c->addr);
      c->port = ntohs(a->sin_port);
    } else if (ss.ss_family == AF_INET6) {
      struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
      inet_ntop(AF_INET6, &a->sin6_addr, c->addr, sizeof c->addr);
      c->port = ntohs(a->sin6_port);
    }
    if (read_more(c)) {
      hand_over(c, REP_CONN, 0);
      continue;
    }
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.u64 = (uint64_t)(uintptr_t)c | 1};
    if (epoll_ctl(A.ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
      hand_over(c, REP_CONN, 0);
      continue;
    }
    c->deadline = l->timeout_ms > 0 ? now + l->timeout_ms : 0;
    if (c->deadline && (A.next_deadline == 0 || c->deadline < A.next_deadline)) A.next_deadline = c->deadline;
    c->next = A.waiting;
    if (A.waiting) A.waiting->prev = c;
    A.waiting = c;
    count_held(c, c->len > 0 ? 2 : 1);
  }
}

static void on_watch(uint32_t idx, uint32_t gen) {
  if (idx >= A.next_watch) return;
  watch_t *w = &A.watches[idx];
  if (w->fd < 0 || w->gen != gen) return;
  /* Once (EPOLLONESHOT): the watch stays registered, disarmed, until it is ended. */
  /* The generation goes with it: JavaScript may have ended this watch and started another in the
   * same slot before the report arrives, and must not take it for the new one's. */
  report_t *r = queue_report(REP_GONE, NULL, (int)idx);
  if (r) r->port = (int)gen;
}

int accept_event(uint64_t tag, uint32_t events, int64_t now) {
  if (!(tag & 1)) return 0;
  if (tag & 2) {
    pthread_mutex_lock(&A.mu);
    on_accept((uint32_t)(tag >> 3) & 0xff, now);
    pthread_mutex_unlock(&A.mu);
  } else if (tag & 4) {
    pthread_mutex_lock(&A.wmu);
    on_watch((uint32_t)((tag >> 3) & 0x1fffffff), (uint32_t)(tag >> 32));
    pthread_mutex_unlock(&A.wmu);
  } else {
    conn_t *c = (conn_t *)(uintptr_t)(tag & ~(uint64_t)1);
    if (read_more(c) || (events & (EPOLLERR | EPOLLHUP))) hand_over(c, REP_CONN, 1);
    else if (c->held == 1 && c->len > 0) count_held(c, 2);
  }
  return 1;
}

int accept_wait_ms(int64_t now) {
  if (A.reports) return 10;
  int64_t next = A.next_deadline;
  if (A.next_resume && (next == 0 || A.next_resume < next)) next = A.next_resume;
  if (next == 0) return -1;
  int64_t left = next - now;
  return left < 0 ? 0 : (int)(left > 1000000 ? 1000000 : left);
}

void accept_tick(int64_t now) {
  if (A.next_resume && now >= A.next_resume) {
    pthread_mutex_lock(&A.mu);
    int64_t next = 0;
    for (uint32_t i = 0; i < MAX_LISTENERS; i++) {
      listener_t *l = &A.lst[i];
      if (l->fd < 0 || l->resume_at == 0) continue;
      if (now >= l->resume_at) {
        struct epoll_event ev = {.events = EPOLLIN, .data.u64 = listener_tag(i)};
        epoll_ctl(A.ep, EPOLL_CTL_ADD, l->fd, &ev);
        l->resume_at = 0;
      } else if (next == 0 || l->resume_at < next) {
        next = l->resume_at;
      }
    }
    A.next_resume = next;
    pthread_mutex_unlock(&A.mu);
  }
  if (A.next_deadline && now >= A.next_deadline) {
    /* client_header_timeout: the connection goes to JavaScript, which answers as it would have. */
    int64_t next = 0;
    for (conn_t *c = A.waiting, *n; c; c = n) {
      n = c->next;
      if (c->deadline && now >= c->deadline) hand_over(c, REP_TIMEOUT, 1);
      else if (c->deadline && (next == 0 || c->deadline < next)) next = c->deadline;
    }
    A.next_deadline = next;
  }
  if (A.reports && A.ready) {
    if (napi_call_threadsafe_function(A.tsfn, A.reports, napi_tsfn_nonblocking) == napi_ok) {
      A.reports = NULL;
      A.tail = &A.reports;
    }
  }
}

/* ---- JavaScript side --------------------------------------------------------------------------- */

static void free_list(report_t *r) {
  while (r) {
    report_t *n = r->next;
    free(r->buf);
    free(r);
    r = n;
  }
}

/* onBatch(nums [kind, listener, fd, port, localPort, watch, ...], addrs: string[], localAddrs: string[], heads: Buffer[]) */
static void call_batch(napi_env env, napi_value js_cb, void *context, void *data) {
  report_t *list = data;
  if (env != NULL && js_cb != NULL) {
    napi_value nums, addrs, laddrs, heads, argv[4], undef;
    napi_create_array(env, &nums);
    napi_create_array(env, &addrs);
    napi_create_array(env, &laddrs);
    napi_create_array(env, &heads);
    uint32_t i = 0, k = 0;
    for (report_t *r = list; r; r = r->next, k++) {
      const double f[6] = {r->kind, r->lid, r->fd, r->port, r->lport, r->watch};
      for (int j = 0; j < 6; j++, i++) {
        napi_value v;
        napi_create_double(env, f[j], &v);
        napi_set_element(env, nums, i, v);
      }
      napi_value s, b;
      napi_create_string_latin1(env, r->addr, NAPI_AUTO_LENGTH, &s);
      napi_set_element(env, addrs, k, s);
      napi_create_string_latin1(env, r->laddr, NAPI_AUTO_LENGTH, &s);
      napi_set_element(env, laddrs, k, s);
      napi_create_buffer_copy(env, r->len, r->len ? (const void *)r->buf : (const void *)"", NULL, &b);
      napi_set_element(env, heads, k, b);
    }
    argv[0] = nums;
    argv[1] = addrs;
    argv[2] = laddrs;
    argv[3] = heads;
    napi_get_undefined(env, &undef);
    napi_call_function(env, undef, js_cb, 4, argv, NULL);
  }
  free_list(list);
}

static napi_value num(napi_env env, double v) {
  napi_value r;
  napi_create_double(env, v, &r);
  return r;
}

static double arg_num(napi_env env, napi_value v) {
  double d = -1;
  napi_get_value_double(env, v, &d);
  return d;
}

/* The slot of the open listener JavaScript's id names (its slot and generation), or -1: the
 * argument at `i` of a call with `argc` arguments. */
static int live_listener(napi_env env, napi_value *argv, size_t argc, size_t i) {
  int id = argc > i ? (int)arg_num(env, argv[i]) : -1;
  int lid = id & 0xff;
  return id >= 0 && A.lst[lid].fd >= 0 && (int)((A.lst[lid].gen << 8) | (uint32_t)lid) == id ? lid : -1;
}

/* acceptInit(onBatch): false when the relay's thread is not running (init() first). */
static napi_value AcceptInit(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (A.ready) return num(env, 1);
  int ep = sluice_loop_epoll(env);
  if (ep < 0 || argc < 1) return num(env, 0);
  napi_value name;
  napi_create_string_utf8(env, "sluice_accept", NAPI_AUTO_LENGTH, &name);
  if (napi_create_threadsafe_function(env, argv[0], NULL, name, 0, 1, NULL, NULL, NULL, call_batch, &A.tsfn) != napi_ok) return num(env, 0);
  napi_unref_threadsafe_function(env, A.tsfn);
  A.watches = malloc(MAX_WATCHES * sizeof *A.watches);
  A.free_watches = malloc(MAX_WATCHES * sizeof *A.free_watches);
  if (!A.watches || !A.free_watches) return num(env, 0);
  for (int i = 0; i < MAX_LISTENERS; i++) A.lst[i].fd = -1;
  pthread_mutex_lock(&A.mu);
  A.tail = &A.reports;
  A.ep = ep;
  A.ready = 1;
  pthread_mutex_unlock(&A.mu);
  return num(env, 1);
}

/* acceptListen(fd, headerTimeoutMs, maxHead): the listener's id, or -1. The addon accepts on a
 * duplicate of `fd`; the caller closes its own. */
static napi_value AcceptListen(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (!A.ready || argc < 3) return num(env, -1);
  int fd = (int)arg_num(env, argv[0]);
  pthread_mutex_lock(&A.mu);
  int lid = -1;
  for (int i = 0; i < MAX_LISTENERS; i++)
    if (A.lst[i].fd < 0) {
      lid = i;
      break;
    }
  int d = lid >= 0 ? fcntl(fd, F_DUPFD_CLOEXEC, 0) : -1;
  if (d >= 0) {
    int fl = fcntl(d, F_GETFL);
    fcntl(d, F_SETFL, fl | O_NONBLOCK);
    A.lst[lid].fd = d;
    A.lst[lid].gen = (A.lst[lid].gen + 1) & 0xffffff;
    A.lst[lid].held_empty = A.lst[lid].held_partial = 0;
    A.lst[lid].resume_at = 0;
    /* Balanced only where this worker has a slot in the shared table. */
    A.lst[lid].balanced = argc >= 4 && arg_num(env, argv[3]) != 0 && S.slots != NULL;
    A.lst[lid].timeout_ms = (int64_t)arg_num(env, argv[1]);
    double mh = arg_num(env, argv[2]);
    A.lst[lid].max_head = mh >= 1024 ? (size_t)mh : 8192;
    struct sockaddr_storage ls;
    socklen_t ll = sizeof ls;
    A.lst[lid].wild = 0;
    if (getsockname(d, (struct sockaddr *)&ls, &ll) == 0) {
      if (ls.ss_family == AF_INET) A.lst[lid].wild = ((struct sockaddr_in *)&ls)->sin_addr.s_addr == htonl(INADDR_ANY);
      else if (ls.ss_family == AF_INET6) A.lst[lid].wild = IN6_IS_ADDR_UNSPECIFIED(&((struct sockaddr_in6 *)&ls)->sin6_addr);
    }
    /* Not EPOLLEXCLUSIVE, though worker processes may accept on one shared socket: with it the
     * kernel wakes the first idle waiter every time, and one worker takes every connection of a
     * light load. Without it each wakes and they race for the accept, as libuv's do. */
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = listener_tag((uint32_t)lid)};
    if (epoll_ctl(A.ep, EPOLL_CTL_ADD, d, &ev) != 0) {
      close(d);
      A.lst[lid].fd = -1;
      lid = -1;
    }
  } else {
    lid = -1;
  }
  if (lid >= 0 && A.lst[lid].balanced && S.balanced++ == 0) __atomic_store_n(&S.slots[S.me].active, 1, __ATOMIC_RELAXED);
  int id = lid >= 0 ? (int)((A.lst[lid].gen << 8) | (uint32_t)lid) : -1;
  pthread_mutex_unlock(&A.mu);
  return num(env, id);
}

/* acceptConfigure(id, headerTimeoutMs, maxHead): a reload's new limits, for connections accepted from now on. */
static napi_value AcceptConfigure(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  pthread_mutex_lock(&A.mu);
  int lid = argc >= 3 ? live_listener(env, argv, argc, 0) : -1;
  int ok = lid >= 0;
  if (ok) {
    A.lst[lid].timeout_ms = (int64_t)arg_num(env, argv[1]);
    double mh = arg_num(env, argv[2]);
    A.lst[lid].max_head = mh >= 1024 ? (size_t)mh : 8192;
  }
  pthread_mutex_unlock(&A.mu);
  return num(env, ok);
}

/* acceptStop(id): stops accepting and closes the addon's duplicate (the socket closes with the
 * last descriptor). Connections accepted already are still reported. */
static napi_value AcceptStop(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  pthread_mutex_lock(&A.mu);
  int lid = live_listener(env, argv, argc, 0);
  int ok = lid >= 0;
  if (ok) {
    if (A.lst[lid].resume_at == 0) epoll_ctl(A.ep, EPOLL_CTL_DEL, A.lst[lid].fd, NULL);
    close(A.lst[lid].fd);
    A.lst[lid].fd = -1;
    /* A worker that takes no more connections is no one's measure. */
    if (A.lst[lid].balanced && --S.balanced == 0) __atomic_store_n(&S.slots[S.me].active, 0, __ATOMIC_RELAXED);
    A.lst[lid].balanced = 0;
  }
  pthread_mutex_unlock(&A.mu);
  return num(env, ok);
}

/* acceptShare(fd, slot): maps the workers' shared table (a file of SHARE_SLOTS * 32 bytes the
 * primary made, `fd` inherited) and takes `slot` in it; 1, or 0 (no balancing). Once, before any
 * balanced listener. */
static napi_value AcceptShare(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 2) return num(env, 0);
  int fd = (int)arg_num(env, argv[0]);
  int slot = (int)arg_num(env, argv[1]);
  pthread_mutex_lock(&A.mu);
  int ok = S.slots != NULL;
  if (!ok && slot >= 0 && slot < SHARE_SLOTS) {
    void *m = mmap(NULL, SHARE_SLOTS * sizeof(share_slot_t), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m != MAP_FAILED) {
      S.slots = m;
      S.me = slot;
      /* Counted from here, as JavaScript's count of what it takes (before any listener). */
      __atomic_store_n(&S.slots[slot].load, 0, __ATOMIC_RELAXED);
      __atomic_store_n(&S.slots[slot].taken, 0, __ATOMIC_RELAXED);
      __atomic_store_n(&S.slots[slot].accepted, 0, __ATOMIC_RELAXED);
      __atomic_store_n(&S.slots[slot].active, 0, __ATOMIC_RELAXED);
      ok = 1;
    }
  }
  pthread_mutex_unlock(&A.mu);
  return num(env, ok);
}

/* acceptLoad(held, taken): the connections JavaScript holds and the number it has taken from
 * this addon so far, into the shared table. `taken` first: a reader in between sees this worker's
 * load low by the connections taken since the last call, for a moment. */
static napi_value AcceptLoad(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (S.slots == NULL || argc < 2) return num(env, 0);
  __atomic_store_n(&S.slots[S.me].taken, (int64_t)arg_num(env, argv[1]), __ATOMIC_RELAXED);
  __atomic_store_n(&S.slots[S.me].load, (int64_t)arg_num(env, argv[0]), __ATOMIC_RELAXED);
  return num(env, 1);
}

/* acceptWatch(fd): a watch id (generation * MAX_WATCHES + slot; reported as gone, slot and
 * generation, once the client goes away), or -1. For a descriptor the addon did not hand over
 * watched already (it could not). */
static napi_value AcceptWatch(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (!A.ready || argc < 1) return num(env, -1);
  return num(env, start_watch((int)arg_num(env, argv[0]), EPOLL_CTL_ADD));
}

/* acceptUnwatch(id): ends a watch (whether or not it fired); never for one the relay took (adopt). */
static napi_value AcceptUnwatch(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  return num(env, argc >= 1 && end_watch(arg_num(env, argv[0])));
}

/* acceptSend(fd, buffer): writes all of `buffer` now, or what it could: the count written (-errno on an error). */
static napi_value AcceptSend(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 2) return num(env, -EINVAL);
  int fd = (int)arg_num(env, argv[0]);
  void *data;
  size_t len;
  if (napi_get_buffer_info(env, argv[1], &data, &len) != napi_ok) return num(env, -EINVAL);
  size_t off = 0;
  while (off < len) {
    ssize_t n = send(fd, (uint8_t *)data + off, len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) off += (size_t)n;
    else if (n < 0 && errno == EINTR) continue;
    else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    else return num(env, n < 0 ? -errno : (double)off);
  }
  return num(env, (double)off);
}

/* acceptRef(on): whether the listeners keep the event loop alive (as a listening net.Server does). */
static napi_value AcceptRef(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (!A.ready) return num(env, 0);
  bool on = false;
  if (argc >= 1) napi_get_value_bool(env, argv[0], &on);
  if (on) napi_ref_threadsafe_function(env, A.tsfn);
  else napi_unref_threadsafe_function(env, A.tsfn);
  return num(env, 1);
}

/* acceptHeld(id): [waiting, reading], the listener's connections the addon holds (stub_status). */
static napi_value AcceptHeld(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], arr;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int lid = live_listener(env, argv, argc, 0);
  int empty = 0, partial = 0;
  if (lid >= 0) {
    empty = __atomic_load_n(&A.lst[lid].held_empty, __ATOMIC_RELAXED);
    partial = __atomic_load_n(&A.lst[lid].held_partial, __ATOMIC_RELAXED);
  }
  napi_create_array_with_length(env, 2, &arr);
  napi_set_element(env, arr, 0, num(env, empty));
  napi_set_element(env, arr, 1, num(env, partial));
  return arr;
}

static napi_value AcceptStats(napi_env env, napi_callback_info info) {
  napi_value o;
  napi_create_object(env, &o);
  pthread_mutex_lock(&A.mu);
  napi_set_named_property(env, o, "accepted", num(env, A.accepted));
  napi_set_named_property(env, o, "handed", num(env, A.handed));
  pthread_mutex_unlock(&A.mu);
  /* Watches not ended yet (the tests check that none is left behind). */
  pthread_mutex_lock(&A.wmu);
  napi_set_named_property(env, o, "watches", num(env, (double)(A.next_watch - A.nfree)));
  pthread_mutex_unlock(&A.wmu);
  return o;
}

void accept_define(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"acceptInit", NULL, AcceptInit, NULL, NULL, NULL, napi_default, NULL},
    {"acceptListen", NULL, AcceptListen, NULL, NULL, NULL, napi_default, NULL},
    {"acceptConfigure", NULL, AcceptConfigure, NULL, NULL, NULL, napi_default, NULL},
    {"acceptStop", NULL, AcceptStop, NULL, NULL, NULL, napi_default, NULL},
    {"acceptWatch", NULL, AcceptWatch, NULL, NULL, NULL, napi_default, NULL},
    {"acceptUnwatch", NULL, AcceptUnwatch, NULL, NULL, NULL, napi_default, NULL},
    {"acceptSend", NULL, AcceptSend, NULL, NULL, NULL, napi_default, NULL},
    {"acceptRef", NULL, AcceptRef, NULL, NULL, NULL, napi_default, NULL},
    {"acceptStats", NULL, AcceptStats, NULL, NULL, NULL, napi_default, NULL},
    {"acceptHeld", NULL, AcceptHeld, NULL, NULL, NULL, napi_default, NULL},
    {"acceptShare", NULL, AcceptShare, NULL, NULL, NULL, napi_default, NULL},
    {"acceptLoad", NULL, AcceptLoad, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}

/* The relay's cleanup, after its thread stopped: nothing of ours runs any more. */
void accept_cleanup(void) {
  if (!A.ready) return;
  A.ready = 0;
  for (int i = 0; i < MAX_LISTENERS; i++)
    if (A.lst[i].fd >= 0) close(A.lst[i].fd);
  for (conn_t *c = A.waiting, *n; c; c = n) {
    n = c->next;
    close(c->fd);
    free(c->buf);
    free(c);
  }
  free_list(A.reports);
  A.reports = NULL;
  free(A.scratch);
  A.scratch = NULL;
  napi_release_threadsafe_function(A.tsfn, napi_tsfn_abort);
}
