{
  "targets": [
    {
      "target_name": "sluice_memory",
      "sources": ["sluice_memory.cc"],
      "cflags_cc": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "defines": ["NAPI_VERSION=8"],
      "conditions": [
        ["OS!='linux'", { "type": "none", "sources!": ["sluice_memory.cc"] }]
      ]
    }
  ]
}
