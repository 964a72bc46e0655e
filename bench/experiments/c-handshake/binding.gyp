{
  "targets": [
    {
      "target_name": "c_handshake",
      "sources": ["c_handshake.c", "../../../native/sluice_upstream.c", "../../../native/sluice_accept.c", "../../../native/sluice_bind.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-std=gnu11"],
      "defines": ["NAPI_VERSION=8"],
      "conditions": [
        ["OS!='linux'", { "type": "none", "sources!": ["c_handshake.c", "../../../native/sluice_upstream.c", "../../../native/sluice_accept.c", "../../../native/sluice_bind.c"] }]
      ]
    }
  ]
}
