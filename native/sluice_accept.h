/* Accepting in the addon (sluice_accept.c): the hooks the relay's I/O thread calls. */
#ifndef SLUICE_ACCEPT_H
#define SLUICE_ACCEPT_H
#include <node_api.h>
#include <stdint.h>

/* The relay's epoll descriptor once its thread runs (init()), else -1 (sluice_tunnel.c). */
int sluice_loop_epoll(napi_env env);
/* An epoll event: 1 when the tag was ours (bit 0 set) and handled. */
int accept_event(uint64_t tag, uint32_t events, int64_t now);
/* How long the I/O thread may wait for our sake (-1: forever). */
int accept_wait_ms(int64_t now);
/* After each wake-up: expired head timers, then the batch of reports to JavaScript. */
void accept_tick(int64_t now);
/* The relay adopts a watched client descriptor as it is (adopt(), JavaScript's thread): ends watch
 * `id` without touching the epoll. 1 when it was live on `fd`, which then stays registered under
 * the watch's tag (armed, or disarmed if it fired) for the I/O thread to EPOLL_CTL_MOD; 0: `fd` is
 * not registered. An event of the watch read after this is dropped (the slot is free, or has
 * another generation). */
int accept_take_watch(double id, int fd);
void accept_define(napi_env env, napi_value exports);
void accept_cleanup(void);
#endif
