/*
 * The upstream leg of a WebSocket handshake on the relay's I/O thread (sluice_upstream.c): what
 * sluice_tunnel.c calls of it. The legs share the relay's epoll, its eventfd and its thread; they
 * keep their own command queue, their own reports and their own thread-safe function.
 */
#ifndef SLUICE_UPSTREAM_H
#define SLUICE_UPSTREAM_H

#include <node_api.h>
#include <stdint.h>

/* A leg's epoll data starts as the relay's side_ref_t does (a tunnel pointer, then a side): a NULL
 * pointer, then this side, which no tunnel side has (they are 0 and 1). */
#define SLUICE_LEG_SIDE 7

typedef struct legs_s legs_t;

legs_t *legs_create(void);
/* The relay's epoll and eventfd, once init() made them. */
void legs_bind(legs_t *G, int ep, int wake);
/* Adds legInit, legStart, legCancel, legWake, legRef, legStats to the addon's exports. */
void legs_define(napi_env env, napi_value exports, legs_t *G);
/* I/O thread: the eventfd was readable (the relay's own commands are taken too). */
void legs_commands(legs_t *G);
/* I/O thread: an event on a leg's socket. */
void legs_event(legs_t *G, void *ptr, uint32_t events);
/* I/O thread, before epoll_wait: the wait shortened to the first leg's deadline. */
int legs_timeout(legs_t *G, int timeout);
/* I/O thread, after a batch of events: expired legs, freed ones, the reports posted. */
void legs_after(legs_t *G);
/* After the I/O thread has stopped: closes what is left. */
void legs_destroy(legs_t *G);

#endif
