/* Listening sockets the addon opens itself (sluice_bind.c). */
#ifndef SLUICE_BIND_H
#define SLUICE_BIND_H
#include <node_api.h>
void bind_define(napi_env env, napi_value exports);
#endif
