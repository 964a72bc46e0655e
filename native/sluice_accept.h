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
void accept_define(napi_env env, napi_value exports);
void accept_cleanup(void);
#endif
