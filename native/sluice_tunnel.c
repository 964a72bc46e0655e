/*
 * Sluice's native tunnel: moves the bytes of established, plain-TCP upgraded connections off the
 * JavaScript thread.
 *
 * JavaScript hands over a tunnel's two sockets once the 101 has been relayed and nothing is left
 * in Node's buffers: adopt() duplicates both descriptors (Node then closes its own copies and
 * frees the net.Socket objects) and queues the pair to one I/O thread. That thread runs its own
 * epoll loop, level-triggered, and relays each direction as Sluice's TypeScript tunnel does:
 *
 *  - bytes are read into one buffer shared by every tunnel and written straight to the other
 *    socket; only what the receiver does not take at once is copied into a buffer of the
 *    direction's own, and reading that direction stops until it has gone (backpressure, bounded
 *    by one read per direction);
 *  - a WebSocket tunnel follows frame headers each way (payloads are skipped by count), so that
 *    goAway() can end each direction with a close 1001 frame between two frames, and so that the
 *    payload of a large frame can move with splice(2) through a pipe borrowed from a small pool,
 *    without passing through user space at all;
 *  - a FIN is passed on once the direction's pending bytes are out (half-close); a socket whose
 *    peer has finished too (EPOLLHUP without an error) is only read out, and the tunnel ends when
 *    both directions have; a reset or any other error on one socket closes both; no byte either
 *    way for the idle timeout closes both;
 *  - the WebSocket guardrails, as src/websocket/frame-guard.ts, pinger.ts and message-rate.ts
 *    apply them in TypeScript: a guarded direction reads each header whole before a byte of it
 *    passes (guarded_feed), refuses a frame or message over its limit at that header (close 1009
 *    to the sender, 1001 to the other side, as going away), holds a message back without a token
 *    of the rate (reading stops until one is due: the waiters list), takes out the pong to a ping
 *    of its own, and the sweep pings a silent side and shuts a dead one (ping_tick); JavaScript
 *    hears of a guardrail broken in a report of its own, to log and count it;
 *  - byte counts are published into a Float64Array shared with JavaScript; when a tunnel ends
 *    the thread closes its descriptors and reports the slot, the reason and the errno in a batch
 *    through a thread-safe function (each tunnel brings its report along, so none is ever lost).
 *
 * Only this thread touches an adopted tunnel; JavaScript talks to it through a command queue
 * (adopt, goAway, destroy) and an eventfd, written once for all the adopts of a turn of
 * JavaScript's event loop (wake()).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <node_api.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "sluice_accept.h"
#include "sluice_bind.h"
#include "sluice_upstream.h"

#define READ_BUF (64 * 1024)
#define MAX_EVENTS 256
/* Reads per readable event before the loop moves on, so one busy tunnel cannot starve the rest. */
#define READS_PER_EVENT 4
#define MAX_PIPES 64
#define PIPE_BYTES (64 * 1024)
/* How soon end reports that JavaScript could not be handed are offered again. */
#define REPORT_RETRY_MS 10
/* Header bytes a guarded direction may hold back across reads: a header (14 at most), or a close
 * frame's header and status code (16), or the header and payload of a pong to Sluice's ping (22). */
#define HOLD_MAX 24
/* Sluice's ping payload (websocket_ping_interval), and the longest ping frame: masked towards the upstream. */
#define TOKEN_LEN 8
#define PING_MAX (2 + 4 + TOKEN_LEN)
/* How often the sweep may look at pings: a quarter of the shorter setting, not below this (pinger.ts). */
#define MIN_PING_TICK_MS 10

enum { CLIENT = 0, UPSTREAM = 1 };

/* Why a tunnel ended; JavaScript maps these to the TypeScript tunnel's reason strings. */
enum {
  R_CLIENT_CLOSED = 1,
  R_UPSTREAM_CLOSED = 2,
  R_CLIENT_ERROR = 3,
  R_UPSTREAM_ERROR = 4,
  R_IDLE = 5,
  R_DESTROYED = 6,
};

/* Why a guarded tunnel was refused (the report's violation); JavaScript writes the log line. */
enum {
  V_FRAME = 1,   /* websocket_max_frame_size */
  V_MESSAGE = 2, /* websocket_max_message_size */
  V_RATE = 3,    /* websocket_message_rate ... close */
  V_PING = 4,    /* websocket_ping_timeout */
};

/* Report kinds: a tunnel's end, or a guardrail that started ending it (JavaScript logs and counts it). */
enum { K_END = 0, K_REFUSED = 1 };
/* Numbers per report handed to JavaScript (call_js; REPORT_STRIDE in native-tunnels.ts). */
#define REPORT_FIELDS 11

/* Follows WebSocket frame boundaries (the same state machine as src/websocket/frame-cursor.ts). */
typedef struct {
  uint32_t have;      /* header bytes seen of the frame being read (0 at a boundary) */
  uint32_t need;      /* header length once known */
  uint32_t len7;
  uint32_t masked;
  uint64_t ext;
  uint64_t remaining; /* payload bytes still to skip */
  uint8_t close_seen; /* a close frame's header went by: this side ended the session */
  uint8_t b0;         /* the first header byte of the frame being read: FIN and opcode */
  uint8_t key[4];     /* its masking key */
  uint8_t grab;       /* status code bytes of the first close frame still to read (2, 1, 0) */
  uint16_t code;      /* that status code: 1005 when the frame has none (RFC 6455 7.1.5), 0 before one */
  uint64_t messages;  /* data messages whose final frame header went by ($websocket_messages_*) */
} cursor_t;

typedef struct pipe_s {
  int r, w;
  struct pipe_s *next;
} pipe_t;

/* One direction: bytes read from fd[s] go to fd[1 - s]. */
typedef struct {
  uint8_t *pend;      /* bytes the receiver has not taken yet (copy path) */
  size_t pend_len, pend_off, pend_cap;
  pipe_t *pipe;       /* borrowed while spliced bytes are in it */
  size_t in_pipe;
  cursor_t cur;
  uint8_t track;      /* follow frames (WebSocket) */
  uint8_t eof;        /* the source sent its FIN */
  uint8_t shut;       /* the FIN was passed on */
  uint8_t away;       /* a close frame goes out at the next boundary */
  uint8_t away_sent;  /* it went (or is queued): later source bytes are read and dropped */
  uint8_t *away_frame;
  size_t away_len;
  /* ---- guardrails (websocket_max_*_size, websocket_ping_*, websocket_message_rate): the same
   * rules as src/websocket/frame-guard.ts, whose headers are read whole before a byte passes ---- */
  uint8_t guarded;    /* headers are held back until whole (any guardrail on) */
  uint8_t hold_len;
  uint8_t hold[HOLD_MAX]; /* the start of a header the last read ended inside, not passed on */
  uint8_t *stash;     /* a message held back for the rate, and what came after it in the same read */
  size_t stash_len;
  uint64_t msg_bytes; /* payload of the data message in progress, its earlier fragments */
  uint8_t pong_want;  /* a pong from this direction's source carrying pong_token answers Sluice */
  uint8_t pong_token[TOKEN_LEN];
  uint8_t ping_len;   /* Sluice's ping waiting for this direction to reach a frame boundary */
  uint8_t ping[PING_MAX];
  uint8_t rated, blocked;
  double tokens;
  int64_t rate_last, due_ms;
} dir_t;

/*
 * The end-of-tunnel report. Allocated with the tunnel on the JavaScript thread (adopt() refuses the
 * tunnel when it cannot be), so ending a tunnel never needs memory: JavaScript frees its slot only
 * on this report, and one lost report would leak the slot and keep the event loop referenced.
 */
typedef struct report_s {
  uint32_t slot;
  int32_t reason, err;
  int32_t close_side;  /* the side whose close frame came first, -1: none */
  uint32_t close_code;
  double messages[2];  /* per direction, client to upstream first */
  int32_t kind;        /* K_END, K_REFUSED */
  int32_t violation, vside;
  double vsize;
  struct report_s *next;
} report_t;

typedef struct tunnel_s tunnel_t;

typedef struct {
  tunnel_t *t;
  int side;
} side_ref_t;

struct tunnel_s {
  int fd[2];
  uint32_t slot;
  dir_t d[2];
  uint64_t bytes[2];
  int64_t last_ms, idle_ms;
  uint32_t interest[2];
  uint8_t reg[2];
  /* fd[s] reported EPOLLHUP without an error: its peer's FIN came after ours, so nothing more can
   * arrive and what is left is in its receive queue; it is only watched while it can be read. */
  uint8_t hup[2];
  uint8_t ended;
  int reason, err;
  int first_close;    /* the side whose close frame header came first, -1 before one */
  side_ref_t ref[2];
  report_t *report;   /* owned by the tunnel until it ends, then queued in loop_t.reports */
  /* ---- guardrails ---- */
  report_t *refusal;  /* allocated with a guarded tunnel, queued once when a guardrail ends it */
  uint64_t max_frame, max_message;
  int64_t ping_interval, ping_timeout;
  int64_t heard_ms[2]; /* when something was last read from each side */
  int64_t ping_at[2];  /* when Sluice's ping to each side went (or was due), 0: none outstanding */
  double rate, burst;
  uint8_t rate_close;
  uint8_t stopping;   /* going away or refused: no more pings, no rate holds */
  uint8_t waiting;    /* in loop_t.waiters: a direction is held back for the rate */
  struct tunnel_s *wprev, *wnext;
  size_t index;       /* in loop_t.all */
  tunnel_t *next_dead;
  /* bytes the upstream sent after its 101, read by the handshake's upstream leg (sluice_upstream.c):
   * the client gets them first */
  uint8_t *initial;
  size_t initial_len;
};

enum { CMD_ADOPT, CMD_AWAY, CMD_DESTROY };

typedef struct cmd_s {
  int kind;
  uint32_t slot;
  tunnel_t *t;
  uint8_t *frame[2];
  size_t frame_len[2];
  struct cmd_s *next;
} cmd_t;

typedef struct {
  int ep, wake;
  pthread_t thread;
  int started;
  int stop;          /* __atomic */
  pthread_mutex_t mu;
  cmd_t *cmd_head, *cmd_tail;
  /* JavaScript thread only: an adopt went into the empty queue without waking the thread (the
   * caller asked to defer it); the next wake() or undeferred command writes the eventfd. */
  int wake_owed;
  napi_threadsafe_function tsfn;
  napi_ref counters_ref;
  double *counters;
  size_t nslots;
  /* owned by the I/O thread */
  tunnel_t **by_slot;
  tunnel_t **all;
  size_t nall, capall;
  uint8_t *buf;       /* HOLD_MAX bytes of room, then READ_BUF: held header bytes go just before a read */
  int64_t now, sweep_every, next_sweep;
  tunnel_t *waiters;  /* tunnels with a direction held back for websocket_message_rate */
  int64_t wait_next;  /* when the first of them has a token due */
  report_t *reports, **reports_tail; /* ended, not yet handed to JavaScript */
  tunnel_t *dead;
  pipe_t *free_pipes;
  int pipes_made;
  size_t splice_min;
  /* figures, written by the I/O thread and read by stats() on the JavaScript thread: relaxed
   * __atomic operations (each figure stands alone, nothing else is published through them) */
  uint64_t spliced_bytes, copied_bytes, adopted, closed, pend_buffers;
  legs_t *legs;       /* the upstream legs of handshakes (sluice_upstream.c), on this thread too */
} loop_t;

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Figures are read by stats() on the JavaScript thread while this thread writes them: atomic
 * accesses make that well defined (no torn value, no load or store kept in a register). This thread
 * is each figure's only writer, so a relaxed load and store do, without a locked add. */
static inline void figure_add(uint64_t *f, uint64_t n) {
  __atomic_store_n(f, __atomic_load_n(f, __ATOMIC_RELAXED) + n, __ATOMIC_RELAXED);
}

static inline double figure(const uint64_t *f) {
  return (double)__atomic_load_n(f, __ATOMIC_RELAXED);
}

/* ---- frame cursor ---------------------------------------------------------------------------- */

static inline int cur_at_boundary(const cursor_t *c) {
  return c->have == 0 && c->remaining == 0;
}

static inline uint32_t ext_len(uint32_t len7) {
  return len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
}

/*
 * Advances over p[0..n). With stop set, returns the offset of the first frame boundary after the
 * start, or -1 when the bytes end inside a frame (all consumed).
 */
static int64_t cur_walk(cursor_t *c, const uint8_t *p, size_t n, int stop) {
  size_t i = 0;
  while (i < n) {
    if (c->remaining > 0 && c->grab > 0) {
      /* the first close frame's status code, unmasked (RFC 6455 5.3: payload byte j ^ key[j % 4]) */
      uint8_t b = p[i++];
      c->code = (uint16_t)((c->code << 8) | (b ^ (c->masked ? c->key[2 - c->grab] : 0)));
      c->grab--;
      c->remaining--;
      if (c->remaining == 0 && stop) return (int64_t)i;
      continue;
    }
    if (c->remaining > 0) {
      uint64_t left = n - i;
      uint64_t take = c->remaining < left ? c->remaining : left;
      c->remaining -= take;
      i += (size_t)take;
      if (c->remaining == 0 && stop) return (int64_t)i;
      continue;
    }
    uint8_t b = p[i++];
    uint32_t at = c->have++;
    if (at == 0) {
      c->b0 = b;
    } else if (at == 1) {
      c->masked = (b & 0x80) != 0;
      c->len7 = b & 0x7f;
      c->need = 2 + ext_len(c->len7) + (c->masked ? 4 : 0);
      c->ext = 0;
    } else if (at >= 2 && at < 2 + ext_len(c->len7)) {
      c->ext = (c->ext << 8) | b;
    } else if (at >= 2) {
      c->key[at - 2 - ext_len(c->len7)] = b;
    }
    if (c->have == c->need) {
      c->remaining = c->len7 < 126 ? c->len7 : c->ext;
      c->have = 0;
      c->need = 2;
      uint32_t opcode = c->b0 & 0x0f;
      if (opcode < 0x8) {
        if (c->b0 & 0x80) c->messages++;
      } else if (opcode == 0x8 && !c->close_seen) {
        c->close_seen = 1;
        if (c->remaining >= 2) {
          c->grab = 2;
          c->code = 0;
        } else {
          c->code = 1005;
        }
      }
      if (c->remaining == 0 && stop) return (int64_t)i;
    }
  }
  return (stop && cur_at_boundary(c)) ? (int64_t)n : -1;
}

/* ---- helpers ----------------------------------------------------------------------------------- */

static inline int has_pending(const dir_t *d) {
  return d->pend_len > d->pend_off || d->in_pipe > 0;
}

static int append_pending(loop_t *L, dir_t *d, const uint8_t *p, size_t n) {
  if (n == 0) return 1;
  if (d->pend_off > 0 && d->pend_off == d->pend_len) d->pend_off = d->pend_len = 0;
  if (d->pend_len + n > d->pend_cap) {
    size_t live = d->pend_len - d->pend_off;
    size_t cap = live + n;
    uint8_t *nb = malloc(cap);
    if (!nb) return 0;
    if (live) memcpy(nb, d->pend + d->pend_off, live);
    if (!d->pend) figure_add(&L->pend_buffers, 1);
    free(d->pend);
    d->pend = nb;
    d->pend_cap = cap;
    d->pend_len = live;
    d->pend_off = 0;
  }
  memcpy(d->pend + d->pend_len, p, n);
  d->pend_len += n;
  return 1;
}

static void free_pending(loop_t *L, dir_t *d) {
  if (d->pend) figure_add(&L->pend_buffers, (uint64_t)-1);
  free(d->pend);
  d->pend = NULL;
  d->pend_len = d->pend_off = d->pend_cap = 0;
}

static pipe_t *borrow_pipe(loop_t *L) {
  pipe_t *p = L->free_pipes;
  if (p) {
    L->free_pipes = p->next;
    return p;
  }
  if (L->pipes_made >= MAX_PIPES) return NULL;
  int fds[2];
  if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) return NULL;
  p = malloc(sizeof *p);
  if (!p) {
    close(fds[0]);
    close(fds[1]);
    return NULL;
  }
  p->r = fds[0];
  p->w = fds[1];
  L->pipes_made++;
  return p;
}

static void return_pipe(loop_t *L, pipe_t *p, int dirty) {
  if (dirty) {
    /* Bytes of a dead tunnel are still in it: a pipe is only ever reused empty. */
    close(p->r);
    close(p->w);
    free(p);
    L->pipes_made--;
    return;
  }
  p->next = L->free_pipes;
  L->free_pipes = p;
}

/*
 * Live byte counts for JavaScript, which reads the Float64Array with plain loads (Atomics does not
 * take a Float64Array). Each slot has one writer, this thread, and the relaxed atomic store makes
 * it one aligned 8-byte store, never torn or left out; on the 64-bit targets the addon is built for
 * (x86-64, AArch64) V8's aligned 8-byte load then sees the old count or the new one, both true
 * counts of a figure that only grows, so a live figure may lag but is never wrong. The final
 * count is stored before the end report goes through the thread-safe function, whose queue mutex
 * orders it before the report's callback: JavaScript reads it after the report. A reused slot is
 * zeroed by JavaScript before adopt(), and the command queue's mutex orders that before the
 * thread's first store for the new tunnel.
 */
static void publish(loop_t *L, tunnel_t *t, int s) {
  if (t->slot < L->nslots) {
    double v = (double)t->bytes[s];
    __atomic_store(&L->counters[t->slot * 2 + s], &v, __ATOMIC_RELAXED);
  }
}

/* ---- ending ------------------------------------------------------------------------------------ */

/* Queues the tunnel's own report for JavaScript (posted after the current batch). */
static void record_ended(loop_t *L, tunnel_t *t) {
  report_t *r = t->report;
  t->report = NULL;
  r->slot = t->slot;
  r->reason = t->reason;
  r->err = t->err;
  r->close_side = t->first_close;
  /* a status code cut short by the end of the connection counts as none */
  r->close_code = t->first_close < 0 ? 0 : t->d[t->first_close].cur.grab ? 1005 : t->d[t->first_close].cur.code;
  r->messages[0] = (double)t->d[CLIENT].cur.messages;
  r->messages[1] = (double)t->d[UPSTREAM].cur.messages;
  r->kind = K_END;
  r->violation = r->vside = 0;
  r->vsize = 0;
  r->next = NULL;
  *L->reports_tail = r;
  L->reports_tail = &r->next;
  figure_add(&L->closed, 1);
}

static void free_tunnel(tunnel_t *t) {
  free(t->initial);
  free(t->report);
  free(t->refusal);
  for (int s = 0; s < 2; s++) free(t->d[s].stash);
  free(t);
}

static void unwait(loop_t *L, tunnel_t *t) {
  if (!t->waiting) return;
  t->waiting = 0;
  if (t->wprev) t->wprev->wnext = t->wnext;
  else L->waiters = t->wnext;
  if (t->wnext) t->wnext->wprev = t->wprev;
  t->wprev = t->wnext = NULL;
}

static void end_tunnel(loop_t *L, tunnel_t *t, int reason, int err) {
  if (t->ended) return;
  t->ended = 1;
  if (!t->reason) {
    t->reason = reason;
    t->err = err;
  }
  for (int s = 0; s < 2; s++) {
    if (t->reg[s]) epoll_ctl(L->ep, EPOLL_CTL_DEL, t->fd[s], NULL);
    t->reg[s] = 0;
    close(t->fd[s]);
    publish(L, t, s);
    dir_t *d = &t->d[s];
    free_pending(L, d);
    free(d->away_frame);
    d->away_frame = NULL;
    if (d->pipe) return_pipe(L, d->pipe, d->in_pipe > 0);
    d->pipe = NULL;
    d->in_pipe = 0;
  }
  /* swap-remove from the sweep list */
  size_t i = t->index;
  L->all[i] = L->all[L->nall - 1];
  L->all[i]->index = i;
  L->nall--;
  if (t->slot < L->nslots) L->by_slot[t->slot] = NULL;
  unwait(L, t);
  record_ended(L, t);
  /* freed after the current batch of events: a later event of the batch may point at it */
  t->next_dead = L->dead;
  L->dead = t;
}

static void fail(loop_t *L, tunnel_t *t, int side, int err) {
  end_tunnel(L, t, side == CLIENT ? R_CLIENT_ERROR : R_UPSTREAM_ERROR, err);
}

/* ---- relaying ---------------------------------------------------------------------------------- */

static void update_interest(loop_t *L, tunnel_t *t, int s) {
  if (t->ended) return;
  dir_t *in = &t->d[s];      /* read from fd[s] */
  dir_t *out = &t->d[1 - s]; /* queued for fd[s] */
  uint32_t want = 0;
  if (!in->eof && !has_pending(in) && !in->blocked) want |= EPOLLIN;
  if (has_pending(out)) want |= EPOLLOUT;
  if (want == 0 && ((in->eof && out->shut) || t->hup[s])) {
    /* Both directions of the socket are shut, so a registered fd would report EPOLLHUP on every
     * wait: it leaves epoll while there is nothing to do on it (a hung-up one comes back when its
     * direction may read again, and then reads the rest of its receive queue). */
    if (t->reg[s]) epoll_ctl(L->ep, EPOLL_CTL_DEL, t->fd[s], NULL);
    t->reg[s] = 0;
    t->interest[s] = 0;
    return;
  }
  if (t->reg[s] && want == t->interest[s]) return;
  struct epoll_event ev = {.events = want, .data.ptr = &t->ref[s]};
  if (epoll_ctl(L->ep, t->reg[s] ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, t->fd[s], &ev) != 0) {
    fail(L, t, s, errno);
    return;
  }
  t->reg[s] = 1;
  t->interest[s] = want;
}

static void check_done(loop_t *L, tunnel_t *t) {
  if (t->ended) return;
  if (t->d[0].eof && t->d[1].eof && t->d[0].shut && t->d[1].shut) end_tunnel(L, t, R_CLIENT_CLOSED, 0);
}

/* Going away, a direction is done once its close frame went, or once its source's FIN came: a
 * close frame after that FIN would be a write after shutdown (EPIPE), and the FIN already tells
 * the receiver that nothing more comes. */
static inline int away_done(const dir_t *d) {
  return d->away_sent || d->eof;
}

/* Passes a FIN on once the direction has nothing pending: after its source's FIN, or once both
 * directions are done going away (the TypeScript tunnel ends both then). */
static void maybe_shut(loop_t *L, tunnel_t *t) {
  int away_over = away_done(&t->d[0]) && away_done(&t->d[1]);
  for (int s = 0; s < 2 && !t->ended; s++) {
    dir_t *d = &t->d[s];
    if (d->shut || has_pending(d)) continue;
    if (!d->eof && !away_over) continue;
    if (shutdown(t->fd[1 - s], SHUT_WR) != 0 && errno != ENOTCONN) {
      fail(L, t, 1 - s, errno);
      return;
    }
    d->shut = 1;
  }
  check_done(L, t);
}

/* Writes p[0..n) to the direction's receiver, keeping what it does not take. 0 when it failed. */
static int send_or_queue(loop_t *L, tunnel_t *t, int s, const uint8_t *p, size_t n) {
  dir_t *d = &t->d[s];
  if (n == 0) return 1;
  if (has_pending(d)) {
    if (!append_pending(L, d, p, n)) {
      fail(L, t, 1 - s, ENOMEM);
      return 0;
    }
    return 1;
  }
  ssize_t w = send(t->fd[1 - s], p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
  if (w < 0) {
    if (errno != EAGAIN && errno != EINTR) {
      fail(L, t, 1 - s, errno);
      return 0;
    }
    w = 0;
  }
  if ((size_t)w < n && !append_pending(L, d, p + w, n - (size_t)w)) {
    fail(L, t, 1 - s, ENOMEM);
    return 0;
  }
  return 1;
}

static void queue_away_frame(loop_t *L, tunnel_t *t, int s) {
  dir_t *d = &t->d[s];
  d->away = 0;
  d->away_sent = 1;
  if (d->away_frame) send_or_queue(L, t, s, d->away_frame, d->away_len);
  free(d->away_frame);
  d->away_frame = NULL;
}

/* ---- guardrails -------------------------------------------------------------------------------- */

static void begin_away(loop_t *L, tunnel_t *t, uint8_t *frame[2], size_t len[2]);

/* Bytes were read from side s: it is alive (websocket_ping_interval counts silence per side). */
static inline void heard(tunnel_t *t, int s) {
  t->heard_ms[s] = 0; /* stamped by the sweep: 0 reads as "heard since the last look" */
  t->ping_at[s] = 0;
}

static void random_bytes(uint8_t *p, size_t n) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = getrandom(p + got, n - got, GRND_NONBLOCK);
    if (r <= 0) break;
    got += (size_t)r;
  }
  /* no entropy to be had (never on Linux after boot): a key or token only needs to be unpredictable
   * to the endpoints, and the clock is the fallback */
  for (; got < n; got++) p[got] = (uint8_t)(now_ms() * 2654435761u >> (got % 24));
}

/*
 * A control frame with `payload` (at most 125 bytes): masked towards the upstream, as a client's
 * frames must be, unmasked towards the client (RFC 6455 5.1, 5.3). Returns its length.
 */
static size_t control_frame(uint8_t *out, uint8_t opcode, const uint8_t *payload, size_t n, int masked) {
  size_t i = 0;
  out[i++] = (uint8_t)(0x80 | opcode);
  out[i++] = (uint8_t)((masked ? 0x80 : 0) | n);
  uint8_t key[4] = {0, 0, 0, 0};
  if (masked) {
    random_bytes(key, 4);
    memcpy(out + i, key, 4);
    i += 4;
  }
  for (size_t j = 0; j < n; j++) out[i++] = payload[j] ^ key[j & 3];
  return i;
}

/* A close frame with its status code and reason, on the heap (begin_away takes it). */
static uint8_t *close_frame(uint16_t code, const char *reason, int masked, size_t *len) {
  uint8_t payload[125];
  size_t rn = strlen(reason);
  payload[0] = (uint8_t)(code >> 8);
  payload[1] = (uint8_t)code;
  memcpy(payload + 2, reason, rn);
  uint8_t *f = malloc(2 + 4 + 2 + rn);
  if (f) *len = control_frame(f, 0x8, payload, 2 + rn, masked);
  return f;
}

/* websocket_message_rate: a token for the message whose first header is read (message-rate.ts). */
static int take_token(loop_t *L, tunnel_t *t, dir_t *d) {
  double size = t->burst < 1 ? 1 : t->burst;
  d->tokens += (double)(L->now - d->rate_last) * t->rate / 1000.0;
  if (d->tokens > size) d->tokens = size;
  d->rate_last = L->now;
  if (d->tokens < 1) return 0;
  d->tokens -= 1;
  return 1;
}

/* Ms until the direction's next token. */
static int64_t token_wait(tunnel_t *t, dir_t *d) {
  double ms = (1 - d->tokens) * 1000.0 / t->rate;
  int64_t w = (int64_t)ms;
  if ((double)w < ms) w++;
  return w < 1 ? 1 : w;
}

/* Tells JavaScript, once, that a guardrail is ending the tunnel (it logs the line, counts it and
 * starts the grace of going away). */
static void queue_refusal(loop_t *L, tunnel_t *t, int violation, int side, double size) {
  report_t *r = t->refusal;
  if (!r) return;
  t->refusal = NULL;
  r->slot = t->slot;
  r->kind = K_REFUSED;
  r->reason = r->err = 0;
  r->close_side = t->first_close;
  r->close_code = t->first_close < 0 ? 0 : t->d[t->first_close].cur.grab ? 1005 : t->d[t->first_close].cur.code;
  r->messages[0] = (double)t->d[CLIENT].cur.messages;
  r->messages[1] = (double)t->d[UPSTREAM].cur.messages;
  r->violation = violation;
  r->vside = side;
  r->vsize = size;
  r->next = NULL;
  *L->reports_tail = r;
  L->reports_tail = &r->next;
}

/*
 * A frame read from side s broke a limit at its header: nothing more passes from s. The other side
 * gets close 1001 at once (the direction from s is at a boundary: the header was not passed on),
 * and s gets 1009 (1008 for the rate) once the frame in flight towards it is through; then both
 * ends, as going away (relay.ts #refuse).
 */
static void refuse(loop_t *L, tunnel_t *t, int s, int violation, uint64_t size) {
  queue_refusal(L, t, violation, s, (double)size);
  uint8_t *frame[2];
  size_t len[2] = {0, 0};
  /* frame[x] goes out in direction x: read from x, written to 1 - x */
  frame[s] = close_frame(1001, "going away", 1 - s == UPSTREAM, &len[s]);
  frame[1 - s] = violation == V_RATE ? close_frame(1008, "message rate exceeded", s == UPSTREAM, &len[1 - s])
    : close_frame(1009, violation == V_FRAME ? "frame too big" : "message too big", s == UPSTREAM, &len[1 - s]);
  begin_away(L, t, frame, len);
}

/* Sluice's ping waiting for direction x sends once x is between two frames. */
static void ping_if_boundary(loop_t *L, tunnel_t *t, int x) {
  dir_t *d = &t->d[x];
  if (d->ping_len == 0 || d->cur.remaining > 0 || d->cur.have > 0) return;
  size_t n = d->ping_len;
  d->ping_len = 0;
  send_or_queue(L, t, x, d->ping, n);
}

static inline uint64_t be_bytes(const uint8_t *p, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; i++) v = (v << 8) | p[i];
  return v;
}

/*
 * Walks data[0..n) read from side s of a guarded direction and sends what may pass (frame-guard.ts
 * feed): every header is read whole first; a frame over websocket_max_frame_size, or a data frame
 * taking its message over websocket_max_message_size (sizes are wire payload: compressed with
 * permessage-deflate), is refused before any byte of it passes; a data message without a token of
 * websocket_message_rate is held back with the rest of the read, and reading stops until one is
 * due; a pong answering Sluice's ping is taken out. Control frames between fragments belong to no
 * message (RFC 6455 5.5). `data` may be the direction's stash: it is copied before being kept.
 */
static void guarded_feed(loop_t *L, tunnel_t *t, int s, uint8_t *data, size_t n) {
  dir_t *d = &t->d[s];
  cursor_t *c = &d->cur;
  size_t i = 0, from = 0;
  while (i < n) {
    if (c->remaining > 0) {
      uint64_t left = n - i;
      uint64_t take = c->remaining < left ? c->remaining : left;
      c->remaining -= take;
      i += (size_t)take;
      continue;
    }
    size_t start = i, avail = n - start;
    if (avail < 2) goto hold;
    uint8_t b0 = data[start], b1 = data[start + 1];
    uint32_t len7 = b1 & 0x7f;
    int masked = (b1 & 0x80) != 0;
    size_t hl = 2 + ext_len(len7) + (masked ? 4 : 0);
    if (avail < hl) goto hold;
    uint64_t length = len7 < 126 ? len7 : be_bytes(data + start + 2, (int)ext_len(len7));
    const uint8_t *key = masked ? data + start + hl - 4 : NULL;
    uint32_t opcode = b0 & 0x0f;
    int fin = (b0 & 0x80) != 0;
    if (t->max_frame > 0 && length > t->max_frame) {
      if (!send_or_queue(L, t, s, data + from, start - from)) return;
      refuse(L, t, s, V_FRAME, length);
      return;
    }
    if (opcode < 0x8) {
      uint64_t before = opcode == 0 ? d->msg_bytes : 0;
      /* the sum saturates: a 64-bit length near 2^64 (RFC 6455 5.2 forbids bit 63) must not wrap below the limit */
      uint64_t total = length > UINT64_MAX - before ? UINT64_MAX : before + length;
      if (t->max_message > 0 && total > t->max_message) {
        if (!send_or_queue(L, t, s, data + from, start - from)) return;
        refuse(L, t, s, V_MESSAGE, total);
        return;
      }
      if (opcode != 0 && d->rated && !take_token(L, t, d)) {
        if (!send_or_queue(L, t, s, data + from, start - from)) return;
        if (t->rate_close) {
          refuse(L, t, s, V_RATE, 0);
          return;
        }
        /* held back: the message and what follows it wait for a token, reading stops meanwhile */
        uint8_t *rest = malloc(avail);
        if (!rest) {
          fail(L, t, s, ENOMEM);
          return;
        }
        memcpy(rest, data + start, avail);
        free(d->stash);
        d->stash = rest;
        d->stash_len = avail;
        d->blocked = 1;
        d->due_ms = L->now + token_wait(t, d);
        if (!t->waiting) {
          t->waiting = 1;
          t->wprev = NULL;
          t->wnext = L->waiters;
          if (L->waiters) L->waiters->wprev = t;
          L->waiters = t;
        }
        ping_if_boundary(L, t, s);
        return;
      }
      d->msg_bytes = fin ? 0 : total;
      if (fin) c->messages++;
    } else if (opcode == 0x8 && !c->close_seen) {
      if (length >= 2 && avail < hl + 2) goto hold;
      c->close_seen = 1;
      c->code = length < 2 ? 1005
        : (uint16_t)(((data[start + hl] ^ (key ? key[0] : 0)) << 8) | (data[start + hl + 1] ^ (key ? key[1] : 0)));
      /* The side whose close frame comes first ended the session, whichever FIN comes first. */
      if (!t->reason) t->reason = s == CLIENT ? R_CLIENT_CLOSED : R_UPSTREAM_CLOSED;
      if (t->first_close < 0) t->first_close = s;
    } else if (opcode == 0xA && d->pong_want && length == TOKEN_LEN) {
      if (avail < hl + TOKEN_LEN) goto hold;
      int same = 1;
      for (size_t j = 0; j < TOKEN_LEN; j++) {
        if ((data[start + hl + j] ^ (key ? key[j & 3] : 0)) != d->pong_token[j]) same = 0;
      }
      if (same) {
        /* Sluice's own pong: taken out of the stream */
        if (!send_or_queue(L, t, s, data + from, start - from)) return;
        d->pong_want = 0;
        i = from = start + hl + TOKEN_LEN;
        continue;
      }
    }
    c->remaining = length;
    i = start + hl;
    continue;
  hold:
    /* avail < HOLD_MAX by construction: a header, a close code or a pong is still incomplete */
    if (!send_or_queue(L, t, s, data + from, start - from)) return;
    memcpy(d->hold, data + start, avail);
    d->hold_len = (uint8_t)avail;
    ping_if_boundary(L, t, s);
    return;
  }
  if (!send_or_queue(L, t, s, data + from, n - from)) return;
  ping_if_boundary(L, t, s);
}

/*
 * Side `dead` sent nothing within websocket_ping_timeout of Sluice's ping: the other side gets close
 * 1001 where the direction from the dead side is between two frames (else only its end), and the
 * dead side is shut down: nothing written to it would arrive (relay.ts #pingTimedOut). The other
 * side is not read any more either: the tunnel ends once the close frame and the FIN are out, as
 * the relay's finish() closes a leg whose peer is gone.
 */
static void ping_dead(loop_t *L, tunnel_t *t, int dead) {
  queue_refusal(L, t, V_PING, dead, (double)t->ping_timeout);
  uint8_t *frame[2] = {NULL, NULL};
  size_t len[2] = {0, 0};
  if (cur_at_boundary(&t->d[dead].cur)) frame[dead] = close_frame(1001, "going away", 1 - dead == UPSTREAM, &len[dead]);
  /* nothing more goes to the dead side, nothing more is read from it */
  dir_t *to = &t->d[1 - dead];
  free_pending(L, to);
  if (to->pipe) return_pipe(L, to->pipe, to->in_pipe > 0);
  to->pipe = NULL;
  to->in_pipe = 0;
  to->away_sent = 1;
  to->shut = 1;
  to->eof = 1;
  begin_away(L, t, frame, len);
  if (t->ended) return;
  t->d[dead].away_sent = 1;
  t->d[dead].eof = 1;
  shutdown(t->fd[dead], SHUT_RDWR);
  maybe_shut(L, t);
  if (t->ended) return;
  update_interest(L, t, 0);
  update_interest(L, t, 1);
}

/* Sluice's ping towards side y: at once where the direction towards it is between frames, else when it gets there. */
static void send_ping(loop_t *L, tunnel_t *t, int y) {
  t->ping_at[y] = L->now;
  int x = 1 - y; /* the direction writing to y */
  dir_t *to = &t->d[x];
  if (to->shut || to->eof || to->away || to->away_sent) return;
  uint8_t token[TOKEN_LEN];
  random_bytes(token, TOKEN_LEN);
  memcpy(t->d[y].pong_token, token, TOKEN_LEN);
  t->d[y].pong_want = 1;
  to->ping_len = (uint8_t)control_frame(to->ping, 0x9, token, TOKEN_LEN, y == UPSTREAM);
  /* Sluice's pings are traffic for proxy_read_timeout as in the relay, whose idle timer is the
   * client socket's (its reads and writes): a ping to the client counts, one to the upstream not. */
  if (y == CLIENT) t->last_ms = L->now;
  ping_if_boundary(L, t, x);
  if (t->ended) return;
  update_interest(L, t, y);
}

/* The pinger's tick for one tunnel (pinger.ts tick), from the sweep. */
static void ping_tick(loop_t *L, tunnel_t *t) {
  for (int y = 0; y < 2 && !t->ended; y++) {
    if (t->heard_ms[y] == 0) {
      t->heard_ms[y] = L->now;
      continue;
    }
    if (t->ping_at[y] > 0 && t->ping_timeout > 0) {
      if (L->now - t->ping_at[y] >= t->ping_timeout) {
        ping_dead(L, t, y);
        return;
      }
      continue;
    }
    int64_t since = t->heard_ms[y] > t->ping_at[y] ? t->heard_ms[y] : t->ping_at[y];
    if (L->now - since >= t->ping_interval) send_ping(L, t, y);
  }
}

/* A direction held back for the rate has a token due: its stash is fed again. */
static void rate_due(loop_t *L, tunnel_t *t, int s) {
  dir_t *d = &t->d[s];
  d->blocked = 0;
  uint8_t *data = d->stash;
  size_t n = d->stash_len;
  d->stash = NULL;
  d->stash_len = 0;
  if (data) guarded_feed(L, t, s, data, n);
  free(data);
  if (t->ended) return;
  maybe_shut(L, t);
  if (t->ended) return;
  update_interest(L, t, 0);
  update_interest(L, t, 1);
}

/* Runs the directions whose token is due; returns ms until the next one (-1: none waits). */
static int64_t run_waiters(loop_t *L) {
  int64_t next = -1;
  tunnel_t *t = L->waiters;
  while (t) {
    tunnel_t *after = t->wnext;
    int still = 0;
    for (int s = 0; s < 2 && !t->ended; s++) {
      dir_t *d = &t->d[s];
      if (!d->blocked) continue;
      if (d->due_ms <= L->now) rate_due(L, t, s);
      if (!t->ended && d->blocked) {
        still = 1;
        int64_t left = d->due_ms - L->now;
        if (next < 0 || left < next) next = left < 0 ? 0 : left;
      }
    }
    /* rate_due may have blocked it again (it stays listed) or ended it (end_tunnel unlisted it) */
    if (!t->ended && !still) unwait(L, t);
    t = after;
  }
  return next;
}

/* Writes out what is pending for direction s: the pipe first, then the copied bytes. */
static void flush(loop_t *L, tunnel_t *t, int s) {
  dir_t *d = &t->d[s];
  int out = t->fd[1 - s];
  while (d->in_pipe > 0) {
    ssize_t w = splice(d->pipe->r, NULL, out, NULL, d->in_pipe, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (w < 0) {
      if (errno == EAGAIN || errno == EINTR) return;
      fail(L, t, 1 - s, errno);
      return;
    }
    if (w == 0) return;
    d->in_pipe -= (size_t)w;
    t->last_ms = L->now;
  }
  if (d->pipe) {
    return_pipe(L, d->pipe, 0);
    d->pipe = NULL;
  }
  while (d->pend_len > d->pend_off) {
    ssize_t w = send(out, d->pend + d->pend_off, d->pend_len - d->pend_off, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w < 0) {
      if (errno == EAGAIN || errno == EINTR) return;
      fail(L, t, 1 - s, errno);
      return;
    }
    d->pend_off += (size_t)w;
    t->last_ms = L->now;
  }
  /* Drained: the buffer goes back at once. Kept, it would hold up to 64 KiB per direction for the
   * tunnel's life after a single slow write, across thousands of mostly idle tunnels; the next
   * slow write allocates again, one malloc per backpressure episode, each of which costs an
   * epoll round trip anyway. */
  free_pending(L, d);
}

/* Splices up to the rest of the current frame's payload. 1 to go on reading, 0 to stop. */
static int relay_splice(loop_t *L, tunnel_t *t, int s) {
  dir_t *d = &t->d[s];
  if (!d->pipe) d->pipe = borrow_pipe(L);
  if (!d->pipe) return -1; /* no pipe to spare: the copy path takes it */
  size_t want = d->cur.remaining < PIPE_BYTES ? (size_t)d->cur.remaining : PIPE_BYTES;
  ssize_t n = splice(t->fd[s], NULL, d->pipe->w, NULL, want, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
  if (n > 0) {
    if (d->guarded) heard(t, s);
    t->bytes[s] += (uint64_t)n;
    d->cur.remaining -= (uint64_t)n;
    d->in_pipe += (size_t)n;
    figure_add(&L->spliced_bytes, (uint64_t)n);
    t->last_ms = L->now;
    publish(L, t, s);
    flush(L, t, s);
    if (t->ended || has_pending(d)) return 0;
    if (d->away && cur_at_boundary(&d->cur)) queue_away_frame(L, t, s);
    else ping_if_boundary(L, t, s);
    if (t->ended || has_pending(d)) return 0;
    return (size_t)n == want;
  }
  if (d->in_pipe == 0) {
    return_pipe(L, d->pipe, 0);
    d->pipe = NULL;
  }
  if (n == 0) {
    d->eof = 1;
    if (!t->reason) t->reason = s == CLIENT ? R_CLIENT_CLOSED : R_UPSTREAM_CLOSED;
    return 0;
  }
  if (errno != EAGAIN && errno != EINTR) fail(L, t, s, errno);
  return 0;
}

static void relay(loop_t *L, tunnel_t *t, int s) {
  dir_t *d = &t->d[s];
  for (int i = 0; i < READS_PER_EVENT && !t->ended; i++) {
    if (d->eof || has_pending(d) || d->blocked) break;
    if (L->splice_min > 0 && d->track && !d->away_sent && d->cur.have == 0 && d->cur.grab == 0 && d->cur.remaining >= L->splice_min) {
      int r = relay_splice(L, t, s);
      if (r == 0) break;
      if (r == 1) continue;
    }
    uint8_t *buf = L->buf + HOLD_MAX;
    ssize_t n = recv(t->fd[s], buf, READ_BUF, MSG_DONTWAIT);
    if (n > 0) {
      t->bytes[s] += (uint64_t)n;
      t->last_ms = L->now;
      figure_add(&L->copied_bytes, (uint64_t)n);
      publish(L, t, s);
      if (d->away_sent) continue; /* going away: dropped, read on until the FIN */
      size_t len = (size_t)n;
      if (d->away) {
        int64_t cut = cur_walk(&d->cur, buf, len, 1);
        if (d->cur.close_seen && t->first_close < 0) t->first_close = s;
        if (cut >= 0) {
          if (!send_or_queue(L, t, s, buf, (size_t)cut)) return;
          queue_away_frame(L, t, s);
          continue;
        }
      } else if (d->guarded) {
        heard(t, s);
        /* held header bytes go just before the read, in the room kept for them */
        uint8_t *data = buf - d->hold_len;
        memcpy(data, d->hold, d->hold_len);
        len += d->hold_len;
        d->hold_len = 0;
        guarded_feed(L, t, s, data, len);
        if (t->ended || d->blocked) return;
        if ((size_t)n < READ_BUF) break;
        continue;
      } else if (d->track) {
        cur_walk(&d->cur, buf, len, 0);
        /* The side whose close frame comes first ended the session, whichever FIN comes first. */
        if (d->cur.close_seen && !t->reason) t->reason = s == CLIENT ? R_CLIENT_CLOSED : R_UPSTREAM_CLOSED;
        if (d->cur.close_seen && t->first_close < 0) t->first_close = s;
      }
      if (!send_or_queue(L, t, s, buf, len)) return;
      if ((size_t)n < READ_BUF) break;
      continue;
    }
    if (n == 0) {
      d->eof = 1;
      if (!t->reason) t->reason = s == CLIENT ? R_CLIENT_CLOSED : R_UPSTREAM_CLOSED;
      break;
    }
    if (errno == EAGAIN || errno == EINTR) break;
    fail(L, t, s, errno);
    return;
  }
}

static void on_event(loop_t *L, side_ref_t *ref, uint32_t events) {
  tunnel_t *t = ref->t;
  int s = ref->side;
  if (t->ended) return;
  if ((events & (EPOLLERR | EPOLLHUP)) == EPOLLHUP && !t->hup[s] && t->d[1 - s].shut) {
    /* Both directions of the socket are shut and no error is set: the peer's FIN came after the
     * one passed on to it, a clean end and not a reset. Bytes it sent before its FIN may still be
     * in the receive queue, waiting for the other side to take earlier ones: they are relayed,
     * then its FIN. */
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(t->fd[s], SOL_SOCKET, SO_ERROR, &err, &len);
    if (err) {
      fail(L, t, s, err);
      return;
    }
    t->hup[s] = 1;
  }
  int handled = 0;
  if ((events & EPOLLOUT) || ((events & (EPOLLERR | EPOLLHUP)) && has_pending(&t->d[1 - s]))) {
    flush(L, t, 1 - s);
    handled = 1;
  }
  if (!t->ended && ((events & EPOLLIN) || ((events & (EPOLLERR | EPOLLHUP)) && (t->interest[s] & EPOLLIN)))) {
    relay(L, t, s);
    handled = 1;
  }
  if (!t->ended && !handled && ((events & EPOLLERR) || ((events & EPOLLHUP) && !t->hup[s]))) {
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(t->fd[s], SOL_SOCKET, SO_ERROR, &err, &len);
    fail(L, t, s, err ? err : ECONNRESET);
  }
  if (t->ended) return;
  maybe_shut(L, t);
  if (t->ended) return;
  update_interest(L, t, 0);
  update_interest(L, t, 1);
}

/* ---- commands ---------------------------------------------------------------------------------- */

static void do_adopt(loop_t *L, tunnel_t *t) {
  if (L->nall == L->capall) {
    size_t cap = L->capall ? L->capall * 2 : 256;
    tunnel_t **na = realloc(L->all, cap * sizeof *na);
    if (!na) {
      close(t->fd[0]);
      close(t->fd[1]);
      t->reason = R_CLIENT_ERROR;
      t->err = ENOMEM;
      record_ended(L, t);
      free_tunnel(t);
      return;
    }
    L->all = na;
    L->capall = cap;
  }
  t->index = L->nall;
  L->all[L->nall++] = t;
  L->by_slot[t->slot] = t;
  t->last_ms = L->now;
  for (int s = 0; s < 2; s++) t->d[s].rate_last = L->now;
  if (t->idle_ms > 0 || t->ping_interval > 0) {
    int64_t g = t->idle_ms > 0 ? t->idle_ms / 20 : 1000;
    if (g < 5) g = 5;
    if (g > 1000) g = 1000;
    if (t->ping_interval > 0) {
      /* as often as the TypeScript pinger ticks: a quarter of the shorter setting */
      int64_t p = t->ping_interval;
      if (t->ping_timeout > 0 && t->ping_timeout < p) p = t->ping_timeout;
      p /= 4;
      if (p < MIN_PING_TICK_MS) p = MIN_PING_TICK_MS;
      if (p < g) g = p;
    }
    if (g < L->sweep_every) {
      L->sweep_every = g;
      if (L->next_sweep > L->now + g) L->next_sweep = L->now + g;
    }
  }
  figure_add(&L->adopted, 1);
  if (t->initial) {
    /* what the upstream sent after its 101 (an unguarded tunnel: adopt() refuses a guarded one) */
    dir_t *d = &t->d[UPSTREAM];
    if (d->track) cur_walk(&d->cur, t->initial, t->initial_len, 0);
    if (d->cur.close_seen && t->first_close < 0) t->first_close = UPSTREAM;
    if (d->cur.close_seen && !t->reason) t->reason = R_UPSTREAM_CLOSED;
    t->bytes[UPSTREAM] += t->initial_len;
    publish(L, t, UPSTREAM);
    int sent = send_or_queue(L, t, UPSTREAM, t->initial, t->initial_len);
    free(t->initial);
    t->initial = NULL;
    if (!sent) return;
  }
  update_interest(L, t, 0);
  update_interest(L, t, 1);
}

/*
 * Ends each direction x with frame[x] at its next frame boundary (taking the frames). Guardrails
 * stop: pings, and messages held back for the rate, which are dropped with the rest of what their
 * sender still sends (relay.ts #releaseHeld), as are header bytes held back (they belong to a frame
 * that never started on the other side).
 */
static void begin_away(loop_t *L, tunnel_t *t, uint8_t *frame[2], size_t len[2]) {
  t->stopping = 1;
  unwait(L, t);
  for (int s = 0; s < 2; s++) {
    dir_t *d = &t->d[s];
    d->blocked = 0;
    free(d->stash);
    d->stash = NULL;
    d->stash_len = 0;
    d->hold_len = 0;
    d->ping_len = 0;
    d->pong_want = 0;
  }
  for (int s = 0; s < 2; s++) {
    dir_t *d = &t->d[s];
    /* A direction whose source has sent its FIN gets nothing after it (see away_done). */
    if (d->away || d->away_sent || d->eof) {
      free(frame[s]);
      continue;
    }
    d->away_frame = frame[s];
    d->away_len = len[s];
    d->away = 1;
    /* pending bytes end where the cursor is: the frame can follow them */
    if (cur_at_boundary(&d->cur)) queue_away_frame(L, t, s);
    if (t->ended) return;
  }
  maybe_shut(L, t);
  if (t->ended) return;
  update_interest(L, t, 0);
  update_interest(L, t, 1);
}

static void do_away(loop_t *L, cmd_t *c) {
  tunnel_t *t = c->slot < L->nslots ? L->by_slot[c->slot] : NULL;
  if (!t || t->ended) {
    free(c->frame[0]);
    free(c->frame[1]);
    return;
  }
  begin_away(L, t, c->frame, c->frame_len);
}

static void run_commands(loop_t *L) {
  /* One read takes the whole count (the eventfd is not in semaphore mode) */
  uint64_t v;
  ssize_t ignored = read(L->wake, &v, sizeof v);
  (void)ignored;
  pthread_mutex_lock(&L->mu);
  cmd_t *c = L->cmd_head;
  L->cmd_head = L->cmd_tail = NULL;
  pthread_mutex_unlock(&L->mu);
  while (c) {
    cmd_t *next = c->next;
    if (c->kind == CMD_ADOPT) {
      do_adopt(L, c->t);
    } else if (c->kind == CMD_AWAY) {
      do_away(L, c);
    } else if (c->kind == CMD_DESTROY) {
      tunnel_t *t = c->slot < L->nslots ? L->by_slot[c->slot] : NULL;
      if (t && !t->ended) end_tunnel(L, t, R_DESTROYED, 0);
    }
    free(c);
    c = next;
  }
}

static void wake_thread(loop_t *L) {
  L->wake_owed = 0;
  uint64_t one = 1;
  ssize_t ignored = write(L->wake, &one, sizeof one);
  (void)ignored;
}

/* Queues a command; only a command into an empty queue wakes the thread (it takes the whole
 * queue at once), so a burst of hand-overs costs one eventfd write. With `defer` (adopt, when
 * JavaScript says it will call wake() before its event loop waits again) not even that: the
 * write, which on a busy machine may hand the CPU to the I/O thread in the middle of a turn, is
 * made once for every hand-over of the turn. */
static void push_command(loop_t *L, cmd_t *c, int defer) {
  c->next = NULL;
  pthread_mutex_lock(&L->mu);
  int was_empty = L->cmd_head == NULL;
  if (L->cmd_tail) L->cmd_tail->next = c;
  else L->cmd_head = c;
  L->cmd_tail = c;
  pthread_mutex_unlock(&L->mu);
  if (defer) {
    if (was_empty) L->wake_owed = 1;
    return;
  }
  if (was_empty || L->wake_owed) wake_thread(L);
}

/* ---- the I/O thread ---------------------------------------------------------------------------- */

static void sweep(loop_t *L) {
  for (size_t i = L->nall; i > 0; i--) {
    tunnel_t *t = L->all[i - 1];
    if (t->idle_ms > 0 && L->now - t->last_ms >= t->idle_ms) end_tunnel(L, t, R_IDLE, 0);
    else if (t->ping_interval > 0 && !t->stopping) ping_tick(L, t);
  }
}

/* Hands the reports to JavaScript as one list; when the call fails they stay queued and the loop
 * tries again within REPORT_RETRY_MS. */
static void post_ended(loop_t *L) {
  if (!L->reports) return;
  if (napi_call_threadsafe_function(L->tsfn, L->reports, napi_tsfn_nonblocking) != napi_ok) return;
  L->reports = NULL;
  L->reports_tail = &L->reports;
}

/*
 * The I/O thread runs under SCHED_BATCH unless SLUICE_IO_SCHED=other: its wake-ups (a client's
 * frame, an upstream's answer, JavaScript's command) then do not preempt the thread running on
 * that core (often the one that woke it), which carries on with its own batch, and the I/O thread
 * finds more events per epoll_wait. On the shared two-core machine that cuts the CPU per
 * handshake by a fifth to a third in most measurements, with the message cells and the round
 * trip's p99 as before (docs/benchmarks.md, "The I/O thread under SCHED_BATCH"). The name shows
 * in top -H and /proc/PID/task/TID/comm.
 */
static void io_thread_setup(pthread_t thread) {
  pthread_setname_np(thread, "sluice-io");
  /* read here, on the JavaScript thread: getenv on another thread could race a setenv */
  const char *sched = getenv("SLUICE_IO_SCHED");
  if (sched != NULL && strcmp(sched, "other") == 0) return;
  struct sched_param sp = {0};
  pthread_setschedparam(thread, SCHED_BATCH, &sp);
}

static void *io_thread(void *arg) {
  loop_t *L = arg;
  struct epoll_event evs[MAX_EVENTS];
  L->now = now_ms();
  L->next_sweep = L->now + L->sweep_every;
  while (!__atomic_load_n(&L->stop, __ATOMIC_ACQUIRE)) {
    int timeout = -1;
    if (L->nall > 0) {
      int64_t left = L->next_sweep - now_ms();
      timeout = left < 0 ? 0 : (int)left;
    }
    if (L->reports && (timeout < 0 || timeout > REPORT_RETRY_MS)) timeout = REPORT_RETRY_MS;
    if (L->waiters) {
      int64_t w = L->wait_next - now_ms();
      if (w < 0) w = 0;
      if (timeout < 0 || w < timeout) timeout = (int)w;
    }
    timeout = legs_timeout(L->legs, timeout);
    int at = accept_wait_ms(now_ms());
    if (at >= 0 && (timeout < 0 || at < timeout)) timeout = at;
    int n = epoll_wait(L->ep, evs, MAX_EVENTS, timeout);
    L->now = now_ms();
    for (int i = 0; i < n; i++) {
      if (evs[i].data.ptr == NULL) {
        run_commands(L);
        legs_commands(L->legs);
      } else if (accept_event(evs[i].data.u64, evs[i].events, L->now)) {
        /* the accept side's (its tags have bit 0 set; the relay's and the legs' are pointers) */
      } else if (((side_ref_t *)evs[i].data.ptr)->side == SLUICE_LEG_SIDE) {
        legs_event(L->legs, evs[i].data.ptr, evs[i].events);
      } else {
        on_event(L, evs[i].data.ptr, evs[i].events);
      }
    }
    accept_tick(L->now);
    if (L->waiters) L->wait_next = L->now + run_waiters(L);
    if (L->now >= L->next_sweep) {
      sweep(L);
      L->next_sweep = L->now + L->sweep_every;
    }
    while (L->dead) {
      tunnel_t *t = L->dead;
      L->dead = t->next_dead;
      free_tunnel(t);
    }
    legs_after(L->legs);
    post_ended(L);
  }
  return NULL;
}

/* ---- JavaScript side --------------------------------------------------------------------------- */

static void free_reports(report_t *r) {
  while (r) {
    report_t *next = r->next;
    free(r);
    r = next;
  }
}

static void call_js(napi_env env, napi_value js_cb, void *context, void *data) {
  report_t *list = data;
  if (env != NULL && js_cb != NULL) {
    napi_value arr, undef;
    napi_create_array_with_length(env, 0, &arr);
    uint32_t i = 0;
    for (report_t *r = list; r; r = r->next) {
      /* every field is an integer or a count well within a double's exact range */
      const double fields[REPORT_FIELDS] = {
        r->slot, r->reason, r->err, r->close_side, r->close_code, r->messages[0], r->messages[1],
        r->kind, r->violation, r->vside, r->vsize,
      };
      for (int f = 0; f < REPORT_FIELDS; f++, i++) {
        napi_value v;
        napi_create_double(env, fields[f], &v);
        napi_set_element(env, arr, i, v);
      }
    }
    napi_get_undefined(env, &undef);
    napi_call_function(env, undef, js_cb, 1, &arr, NULL);
  }
  free_reports(list);
}

static loop_t *loop_of(napi_env env) {
  void *d = NULL;
  napi_get_instance_data(env, &d);
  return d;
}

int sluice_loop_epoll(napi_env env) {
  loop_t *L = loop_of(env);
  return L && L->started ? L->ep : -1;
}

#define THROW(env, msg)                         \
  do {                                          \
    napi_throw_error((env), "ESLUICE", (msg));  \
    return NULL;                                \
  } while (0)

static napi_value js_bool(napi_env env, int v) {
  napi_value r;
  napi_get_boolean(env, v, &r);
  return r;
}

/* init(onReports(flat [slot, reason, errno, closeSide, closeCode, messagesUp, messagesDown, kind, violation, violationSide,
 * violationSize, ...]), counters: Float64Array, spliceMin) */
static napi_value Init(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  loop_t *L = loop_of(env);
  if (L->started) THROW(env, "sluice_tunnel: init() was already called");
  if (argc < 3) THROW(env, "sluice_tunnel: init(onEnded, counters, spliceMin)");
  napi_typedarray_type type;
  size_t length;
  void *data;
  if (napi_get_typedarray_info(env, argv[1], &type, &length, &data, NULL, NULL) != napi_ok || type != napi_float64_array)
    THROW(env, "sluice_tunnel: counters must be a Float64Array");
  uint32_t splice_min = 0;
  napi_get_value_uint32(env, argv[2], &splice_min);
  napi_create_reference(env, argv[1], 1, &L->counters_ref);
  L->counters = data;
  L->nslots = length / 2;
  L->splice_min = splice_min;
  L->by_slot = calloc(L->nslots ? L->nslots : 1, sizeof(tunnel_t *));
  L->buf = malloc(HOLD_MAX + READ_BUF);
  if (!L->by_slot || !L->buf) THROW(env, "sluice_tunnel: out of memory");
  L->ep = epoll_create1(EPOLL_CLOEXEC);
  L->wake = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (L->ep < 0 || L->wake < 0) THROW(env, "sluice_tunnel: epoll/eventfd failed");
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
  epoll_ctl(L->ep, EPOLL_CTL_ADD, L->wake, &ev);
  legs_bind(L->legs, L->ep, L->wake);
  L->sweep_every = 1000;
  napi_value name;
  napi_create_string_utf8(env, "sluice_tunnel", NAPI_AUTO_LENGTH, &name);
  if (napi_create_threadsafe_function(env, argv[0], NULL, name, 0, 1, NULL, NULL, L, call_js, &L->tsfn) != napi_ok)
    THROW(env, "sluice_tunnel: could not create the thread-safe function");
  /* JavaScript refs it while tunnels are open, like a socket keeps the loop alive */
  napi_unref_threadsafe_function(env, L->tsfn);
  if (pthread_create(&L->thread, NULL, io_thread, L) != 0) THROW(env, "sluice_tunnel: could not start the I/O thread");
  /* named and scheduled from here, so both hold once init returns */
  io_thread_setup(L->thread);
  L->started = 1;
  return js_bool(env, 1);
}

/* Reads up to n numbers of a JavaScript array (missing ones stay as they are); 0 when one is not a number. */
static int read_numbers(napi_env env, napi_value arr, double *v, uint32_t n) {
  uint32_t length = 0;
  if (napi_get_array_length(env, arr, &length) != napi_ok) return 0;
  for (uint32_t i = 0; i < n && i < length; i++) {
    napi_value e;
    if (napi_get_element(env, arr, i, &e) != napi_ok) return 0;
    if (napi_get_value_double(env, e, &v[i]) != napi_ok) return 0;
  }
  return 1;
}

static int read_cursor(napi_env env, napi_value arr, dir_t *d) {
  cursor_t *c = &d->cur;
  double v[7] = {0, 2, 0, 0, 0, 0, 0};
  if (!read_numbers(env, arr, v, 7)) return 0;
  d->msg_bytes = (uint64_t)v[6];
  c->have = (uint32_t)v[0];
  c->need = (uint32_t)v[1];
  c->len7 = (uint32_t)v[2];
  c->masked = v[3] != 0;
  c->ext = (uint64_t)v[4];
  c->remaining = (uint64_t)v[5];
  return 1;
}

static uint8_t *copy_buffer(napi_env env, napi_value v, size_t *len);

/*
 * adopt(slot, clientFd, upstreamFd, idleMs, upCursor|null, downCursor|null, guardrails|null, defer?, ownUpstream?, toClient?, clientWatch?) -> boolean.
 * The descriptors are duplicated here: the caller closes its own copies once this returns true.
 * With `clientWatch` a number the client descriptor is taken as it is, not duplicated (the caller
 * lets go of it once this returns true): a descriptor the addon accepted (sluice_accept.c), watched
 * under that watch id (-1: not watched, not in this epoll). The watch ends here (JavaScript never
 * ends it): its registration, armed or fired, becomes the tunnel's (update_interest modifies it);
 * an event of it the I/O thread took meanwhile finds the watch ended and is dropped.
 * With `ownUpstream` the upstream descriptor is a handshake's upstream leg's (sluice_upstream.c): taken
 * as it is, not duplicated (the caller lets go of it once this returns true), still registered in
 * this thread's epoll, disarmed; `toClient` (a Buffer, unguarded tunnels only) goes to the client
 * before anything read later.
 * With `defer` true the I/O thread is not woken: the caller calls wake() once it has handed over
 * what this turn of its event loop had (until then the tunnel waits in the queue).
 */
static napi_value Adopt(napi_env env, napi_callback_info info) {
  size_t argc = 11;
  napi_value argv[11];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  loop_t *L = loop_of(env);
  if (!L->started) THROW(env, "sluice_tunnel: init() first");
  bool own = false;
  if (argc > 8) napi_get_value_bool(env, argv[8], &own);
  if (argc < 6) THROW(env, "sluice_tunnel: adopt(slot, clientFd, upstreamFd, idleMs, upCursor, downCursor)");
  uint32_t slot;
  int32_t cfd, ufd;
  double idle;
  napi_get_value_uint32(env, argv[0], &slot);
  napi_get_value_int32(env, argv[1], &cfd);
  napi_get_value_int32(env, argv[2], &ufd);
  napi_get_value_double(env, argv[3], &idle);
  if (slot >= L->nslots || cfd < 0 || ufd < 0) return js_bool(env, 0);
  tunnel_t *t = calloc(1, sizeof *t);
  if (!t) return js_bool(env, 0);
  t->report = malloc(sizeof *t->report);
  if (!t->report) {
    free(t);
    return js_bool(env, 0);
  }
  napi_valuetype vt;
  for (int s = 0; s < 2; s++) {
    napi_typeof(env, argv[4 + s], &vt);
    if (vt == napi_object) {
      if (!read_cursor(env, argv[4 + s], &t->d[s])) {
        free_tunnel(t);
        THROW(env, "sluice_tunnel: a cursor is [have, need, len7, masked, extended, remaining, messageBytes]");
      }
      t->d[s].track = 1;
    }
  }
  if (argc > 6) {
    napi_typeof(env, argv[6], &vt);
    if (vt == napi_object && t->d[CLIENT].track && t->d[UPSTREAM].track) {
      /* [maxFrame, maxMessage, pingInterval, pingTimeout, rate, burst, close, both] */
      double g[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      if (!read_numbers(env, argv[6], g, 8)) {
        free_tunnel(t);
        THROW(env, "sluice_tunnel: guardrails are [maxFrame, maxMessage, pingInterval, pingTimeout, rate, burst, close, both]");
      }
      t->max_frame = g[0] > 0 ? (uint64_t)g[0] : 0;
      t->max_message = g[1] > 0 ? (uint64_t)g[1] : 0;
      t->ping_interval = g[2] > 0 ? (int64_t)g[2] : 0;
      t->ping_timeout = g[3] > 0 ? (int64_t)g[3] : 0;
      t->rate = g[4] > 0 ? g[4] : 0;
      t->burst = g[5];
      t->rate_close = g[6] != 0;
      double size = t->burst < 1 ? 1 : t->burst;
      for (int s = 0; s < 2; s++) {
        t->d[s].guarded = t->max_frame || t->max_message || t->ping_interval || t->rate > 0;
        t->d[s].rated = t->rate > 0 && (s == CLIENT || g[7] != 0);
        t->d[s].tokens = size;
      }
      if (t->d[CLIENT].guarded) {
        t->refusal = malloc(sizeof *t->refusal);
        if (!t->refusal) {
          free_tunnel(t);
          return js_bool(env, 0);
        }
      }
    }
  }
  if (own && argc > 9) {
    napi_typeof(env, argv[9], &vt);
    if (vt == napi_object) {
      size_t n = 0;
      t->initial = copy_buffer(env, argv[9], &n);
      t->initial_len = n;
      if (!t->initial || n == 0 || t->d[UPSTREAM].guarded) {
        free_tunnel(t);
        return js_bool(env, 0);
      }
    }
  }
  bool own_client = false;
  double client_watch = -1;
  if (argc > 10) {
    napi_typeof(env, argv[10], &vt);
    if (vt == napi_number) {
      own_client = true;
      napi_get_value_double(env, argv[10], &client_watch);
    }
  }
  t->fd[CLIENT] = own_client ? cfd : fcntl(cfd, F_DUPFD_CLOEXEC, 0);
  t->fd[UPSTREAM] = own ? ufd : fcntl(ufd, F_DUPFD_CLOEXEC, 0);
  if (t->fd[CLIENT] < 0 || t->fd[UPSTREAM] < 0) {
    if (t->fd[CLIENT] >= 0 && !own_client) close(t->fd[CLIENT]);
    if (t->fd[UPSTREAM] >= 0 && !own) close(t->fd[UPSTREAM]);
    free_tunnel(t);
    return js_bool(env, 0);
  }
  /* the leg left it registered, disarmed: update_interest modifies that registration */
  if (own) t->reg[UPSTREAM] = 1;
  /* the descriptors are already non-blocking (the flag belongs to the shared file description) */
  t->slot = slot;
  t->first_close = -1;
  t->idle_ms = idle > 0 ? (int64_t)idle : 0;
  t->ref[0].t = t;
  t->ref[0].side = CLIENT;
  t->ref[1].t = t;
  t->ref[1].side = UPSTREAM;
  cmd_t *c = calloc(1, sizeof *c);
  if (!c) {
    if (!own_client) close(t->fd[0]);
    if (!own) close(t->fd[1]);
    free_tunnel(t);
    return js_bool(env, 0);
  }
  /* Last, once nothing can fail: the watch ends now, so that a client that leaves before the I/O
   * thread adopts the tunnel is not reported to JavaScript for nothing. */
  if (own_client && client_watch >= 0) t->reg[CLIENT] = (uint8_t)accept_take_watch(client_watch, cfd);
  c->kind = CMD_ADOPT;
  c->t = t;
  bool defer = false;
  if (argc > 7) napi_get_value_bool(env, argv[7], &defer);
  push_command(L, c, defer);
  return js_bool(env, 1);
}

/* wake(): wakes the I/O thread for the adopts queued with `defer`; false when none was owed. */
static napi_value Wake(napi_env env, napi_callback_info info) {
  (void)info;
  loop_t *L = loop_of(env);
  if (!L->started || !L->wake_owed) return js_bool(env, 0);
  wake_thread(L);
  return js_bool(env, 1);
}

static uint8_t *copy_buffer(napi_env env, napi_value v, size_t *len) {
  void *data;
  size_t n;
  if (napi_get_buffer_info(env, v, &data, &n) != napi_ok) return NULL;
  uint8_t *p = malloc(n ? n : 1);
  if (p) memcpy(p, data, n);
  *len = n;
  return p;
}

/* goAway(slot, frameToUpstream, frameToClient): each direction ends with its frame at a boundary. */
static napi_value GoAway(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  loop_t *L = loop_of(env);
  if (!L->started || argc < 3) THROW(env, "sluice_tunnel: goAway(slot, toUpstream, toClient)");
  cmd_t *c = calloc(1, sizeof *c);
  if (!c) THROW(env, "sluice_tunnel: out of memory");
  c->kind = CMD_AWAY;
  napi_get_value_uint32(env, argv[0], &c->slot);
  c->frame[0] = copy_buffer(env, argv[1], &c->frame_len[0]);
  c->frame[1] = copy_buffer(env, argv[2], &c->frame_len[1]);
  push_command(L, c, 0);
  return js_bool(env, 1);
}

static napi_value Destroy(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  loop_t *L = loop_of(env);
  if (!L->started || argc < 1) THROW(env, "sluice_tunnel: destroy(slot)");
  cmd_t *c = calloc(1, sizeof *c);
  if (!c) THROW(env, "sluice_tunnel: out of memory");
  c->kind = CMD_DESTROY;
  napi_get_value_uint32(env, argv[0], &c->slot);
  push_command(L, c, 0);
  return js_bool(env, 1);
}

static napi_value Ref(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  loop_t *L = loop_of(env);
  bool on = false;
  if (argc > 0) napi_get_value_bool(env, argv[0], &on);
  if (L->started) {
    if (on) napi_ref_threadsafe_function(env, L->tsfn);
    else napi_unref_threadsafe_function(env, L->tsfn);
  }
  return js_bool(env, on);
}

/*
 * trimMemory(): gives the free pages of the C heap back to the kernel (glibc's malloc_trim, which
 * also releases whole free pages inside the heap, not only at its top). A burst of handshakes
 * frees thousands of sockets' C++ objects around the tunnels' long-lived allocations; glibc
 * keeps those pages otherwise. False where there is nothing to trim or no glibc.
 */
static napi_value TrimMemory(napi_env env, napi_callback_info info) {
  (void)info;
#ifdef __GLIBC__
  return js_bool(env, malloc_trim(0) != 0);
#else
  return js_bool(env, false);
#endif
}

static void set_number(napi_env env, napi_value obj, const char *key, double v) {
  napi_value n;
  napi_create_double(env, v, &n);
  napi_set_named_property(env, obj, key, n);
}

/* stats(): what the thread has done so far (for the benchmark and the tests). */
static napi_value Stats(napi_env env, napi_callback_info info) {
  loop_t *L = loop_of(env);
  napi_value o;
  napi_create_object(env, &o);
  set_number(env, o, "adopted", figure(&L->adopted));
  set_number(env, o, "closed", figure(&L->closed));
  set_number(env, o, "splicedBytes", figure(&L->spliced_bytes));
  set_number(env, o, "copiedBytes", figure(&L->copied_bytes));
  set_number(env, o, "pendingBuffers", figure(&L->pend_buffers));
  set_number(env, o, "spliceMin", (double)L->splice_min);
  return o;
}

static void cleanup(void *arg) {
  loop_t *L = arg;
  if (L->started) {
    __atomic_store_n(&L->stop, 1, __ATOMIC_RELEASE);
    uint64_t one = 1;
    ssize_t ignored = write(L->wake, &one, sizeof one);
    (void)ignored;
    pthread_join(L->thread, NULL);
    accept_cleanup();
    for (size_t i = 0; i < L->nall; i++) {
      tunnel_t *t = L->all[i];
      close(t->fd[0]);
      close(t->fd[1]);
      for (int s = 0; s < 2; s++) {
        free_pending(L, &t->d[s]);
        free(t->d[s].away_frame);
      }
      free_tunnel(t);
    }
    while (L->dead) {
      tunnel_t *t = L->dead;
      L->dead = t->next_dead;
      free_tunnel(t);
    }
    free_reports(L->reports);
    L->reports = NULL;
    while (L->free_pipes) {
      pipe_t *p = L->free_pipes;
      L->free_pipes = p->next;
      close(p->r);
      close(p->w);
      free(p);
    }
    cmd_t *c = L->cmd_head;
    while (c) {
      cmd_t *next = c->next;
      if (c->kind == CMD_ADOPT && c->t) {
        close(c->t->fd[0]);
        close(c->t->fd[1]);
        free_tunnel(c->t);
      }
      free(c->frame[0]);
      free(c->frame[1]);
      free(c);
      c = next;
    }
    napi_release_threadsafe_function(L->tsfn, napi_tsfn_abort);
    legs_destroy(L->legs);
    L->legs = NULL;
    close(L->ep);
    close(L->wake);
  }
  legs_destroy(L->legs);
  free(L->all);
  free(L->by_slot);
  free(L->buf);
  pthread_mutex_destroy(&L->mu);
  free(L);
}

NAPI_MODULE_INIT() {
  loop_t *L = calloc(1, sizeof *L);
  if (!L) return NULL;
  pthread_mutex_init(&L->mu, NULL);
  L->ep = L->wake = -1;
  L->reports_tail = &L->reports;
  L->legs = legs_create();
  napi_set_instance_data(env, L, NULL, NULL);
  napi_add_env_cleanup_hook(env, cleanup, L);
  napi_property_descriptor props[] = {
    {"init", NULL, Init, NULL, NULL, NULL, napi_default, NULL},
    {"adopt", NULL, Adopt, NULL, NULL, NULL, napi_default, NULL},
    {"wake", NULL, Wake, NULL, NULL, NULL, napi_default, NULL},
    {"goAway", NULL, GoAway, NULL, NULL, NULL, napi_default, NULL},
    {"destroy", NULL, Destroy, NULL, NULL, NULL, napi_default, NULL},
    {"ref", NULL, Ref, NULL, NULL, NULL, napi_default, NULL},
    {"stats", NULL, Stats, NULL, NULL, NULL, napi_default, NULL},
    {"trimMemory", NULL, TrimMemory, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  legs_define(env, exports, L->legs);
  accept_define(env, exports);
  bind_define(env, exports);
  return exports;
}
