/**
 * The embedded default that `sluice` (and `npm start`) runs without `-c`: the classic nginx
 * WebSocket proxy config in front of two built-in echo backends, plus a demo page at "/" for a
 * browser (a WebSocket client at "/", as `wscat -c ws://127.0.0.1:8080/`, reaches the backends)
 * and a favicon answered locally (a browser's favicon request must not take a round-robin turn).
 */
export const DEFAULT_BACKEND_PORTS = [8010, 8011] as const;
export const DEFAULT_LISTEN = '127.0.0.1:8080';

/** The demo page served at "/" by the embedded default config. */
export const DEMO_PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>Sluice demo</title><link rel="icon" type="image/svg+xml" href="/favicon.ico">
<style>body{font:16px system-ui,sans-serif;max-width:40em;margin:2em auto;color:#222}
code{background:#eee;padding:0 .3em}#log{border:1px solid #ccc;padding:.5em;min-height:8em;white-space:pre-wrap}</style></head>
<body><h1>Sluice</h1>
<p>This page opened a WebSocket to <code>/whoami</code> through Sluice; the backend that answered says who it is.
Each <b>Reconnect</b> opens a new WebSocket: round robin sends it to the other backend.</p>
<p>Backend: <b id="who">connecting...</b> <button id="again">Reconnect</button></p>
<p><input id="msg" value="hello"> <button id="send">Send</button></p>
<div id="log"></div>
<script>
var ws, log = document.getElementById("log");
function say(t) { log.textContent += t + "\\n"; }
function open() {
  if (ws) ws.close();
  ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/whoami");
  ws.onmessage = function (e) {
    try { var j = JSON.parse(e.data); if (j.id) { document.getElementById("who").textContent = j.id; say("connected to " + j.id); return; } } catch (x) {}
    say("echo: " + e.data);
  };
  ws.onclose = function () { say("closed"); };
}
document.getElementById("again").onclick = open;
document.getElementById("send").onclick = function () { ws.send(document.getElementById("msg").value); };
open();
</script></body></html>`;

/** The demo's favicon, answered by Sluice itself. */
export const FAVICON_SVG = '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" fill="#1d5fa8"/><path d="M2 10h12M2 6h12" stroke="#fff" stroke-width="2"/></svg>';

export const DEFAULT_CONFIG = `# Sluice's embedded default: the classic nginx WebSocket proxy config.
events {}
http {
  map $http_upgrade $connection_upgrade { default upgrade; '' close; }
  # "/" is the demo page for a browser and the echo service for a WebSocket client.
  map $http_upgrade $root_for { '' @page; default @backends; }
  upstream websocket { server 127.0.0.1:${DEFAULT_BACKEND_PORTS[0]}; server 127.0.0.1:${DEFAULT_BACKEND_PORTS[1]}; }
  log_format demo '$remote_addr "$request" $status $bytes_sent upstream=$upstream_addr time=$request_time';
  access_log /dev/stdout demo;
  server {
    listen ${DEFAULT_LISTEN};
    proxy_http_version 1.1;
    proxy_set_header Upgrade $http_upgrade;
    proxy_set_header Connection $connection_upgrade;
    proxy_set_header Host $host;
    proxy_set_header X-Real-IP $remote_addr;
    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    proxy_read_timeout 7200s;
    location / {
      proxy_pass http://websocket;
    }
    # "/" names a directory, which "$uri" (a file) never matches: the map decides.
    location = / {
      try_files $uri $root_for;
    }
    location @page {
      default_type text/html;
      return 200 '${DEMO_PAGE.replaceAll('\\', '\\\\').replaceAll("'", "\\'")}';
    }
    location @backends {
      proxy_pass http://websocket;
    }
    location = /favicon.ico {
      default_type image/svg+xml;
      return 200 '${FAVICON_SVG}';
    }
  }
}
`;
