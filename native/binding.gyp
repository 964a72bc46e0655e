{
  "targets": [
    {
      "target_name": "sluice_tunnel",
      "sources": ["sluice_tunnel.c", "sluice_upstream.c", "sluice_accept.c", "sluice_bind.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-std=gnu11"],
      "defines": ["NAPI_VERSION=8"],
      "conditions": [
        ["OS!='linux'", { "type": "none", "sources!": ["sluice_tunnel.c", "sluice_upstream.c", "sluice_accept.c", "sluice_bind.c"] }]
      ]
    }
  ]
}
