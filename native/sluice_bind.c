/*
 * `listen ... reuseport` where Node's listen() has no reusePort (Node 20, 22 before 22.12): the
 * addon opens the socket with SO_REUSEPORT, binds and listens, and Node's net.Server takes the
 * descriptor (src/server/binds.ts, listenOn). With worker processes each worker opens its own and
 * the kernel spreads new connections over them by a hash of the addresses, as nginx's workers
 * get with `reuseport`; where Node has reusePort, Node opens the socket as before.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <node_api.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sluice_bind.h"

static napi_value num(napi_env env, double v) {
  napi_value r;
  napi_create_double(env, v, &r);
  return r;
}

/*
 * bindReusePort(host, port, ipv6only, backlog): a listening descriptor (close-on-exec; libuv makes
 * it non-blocking when it opens it), or -errno (-EINVAL: `host` is not a numeric address). Options
 * as libuv sets them for a TCP server (SO_REUSEADDR; IPV6_V6ONLY as asked), plus SO_REUSEPORT.
 */
static napi_value BindReusePort(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 4) return num(env, -EINVAL);
  char host[INET6_ADDRSTRLEN + 1];
  size_t hl = 0;
  if (napi_get_value_string_utf8(env, argv[0], host, sizeof host, &hl) != napi_ok) return num(env, -EINVAL);
  int32_t port = -1, backlog = 511;
  bool v6only = false;
  napi_get_value_int32(env, argv[1], &port);
  napi_get_value_bool(env, argv[2], &v6only);
  napi_get_value_int32(env, argv[3], &backlog);
  if (port < 0 || port > 65535) return num(env, -EINVAL);
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  socklen_t sl;
  int family;
  struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
  struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
  if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
    family = a4->sin_family = AF_INET;
    a4->sin_port = htons((uint16_t)port);
    sl = sizeof *a4;
  } else if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
    family = a6->sin6_family = AF_INET6;
    a6->sin6_port = htons((uint16_t)port);
    sl = sizeof *a6;
  } else {
    return num(env, -EINVAL);
  }
  int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return num(env, -errno);
  int one = 1, v6 = v6only ? 1 : 0;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
      setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0 ||
      (family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6, sizeof v6) != 0) ||
      bind(fd, (struct sockaddr *)&ss, sl) != 0 || listen(fd, backlog > 0 ? backlog : 511) != 0) {
    int e = errno;
    close(fd);
    return num(env, -e);
  }
  return num(env, fd);
}

void bind_define(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"bindReusePort", NULL, BindReusePort, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
