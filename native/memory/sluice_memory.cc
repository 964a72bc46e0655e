// sluice_memory: gives V8's young generation back once a burst is over (src/cli/memory-settings.ts).
//
// V8 grows the new space (1 MiB per semi-space, doubling up to 16 MiB) while a burst of
// handshakes keeps many objects alive across scavenges, and never shrinks it on its own while the
// process is idle: only a garbage collection that V8 runs to reduce memory does (Heap::
// ReduceNewSpaceSize). Neither N-API nor Node 20's JavaScript API can ask for one; V8's own
// memory-pressure notification does, so this one call is C++ against node's v8.h. A separate
// addon from the tunnel relay (plain C, N-API only), so that a build or load failure here leaves
// the relay alone.
#include <node_api.h>
#include <v8.h>

// reduceMemory(): starts a memory-reducing collection (V8's moderate memory pressure: incremental
// marking, its steps run as tasks on the event loop) whose end shrinks the young generation to
// its initial size and gives free pages back; true when asked. The critical level would collect
// at once, in one pause of 100-150 ms with 3,000-9,000 tunnels held (scripts/idle-memory.mjs
// --give-back); the moderate one spreads it. Meant for an idle process: the JavaScript thread
// still pauses for the collection's last step (the native relay's tunnels flow on their thread).
static napi_value ReduceMemory(napi_env env, napi_callback_info info) {
  v8::Isolate* isolate = v8::Isolate::GetCurrent();
  if (isolate != nullptr) isolate->MemoryPressureNotification(v8::MemoryPressureLevel::kModerate);
  napi_value result;
  napi_get_boolean(env, isolate != nullptr, &result);
  return result;
}

static napi_value Init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"reduceMemory", nullptr, ReduceMemory, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
