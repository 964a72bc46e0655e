/**
 * A table of invalid configurations: each with the exact problems (nginx wording) and the
 * file:line each is reported at.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bad, http, lines, show } from './fixtures.js';

interface Case {
  readonly name: string;
  readonly text: string;
  readonly problems: readonly string[];
  /** Expected hints, by index into `problems` (checked with includes()). */
  readonly hints?: Readonly<Record<number, string>>;
}

const ws = (...body: string[]) => http('  server {', '    listen 8080;', ...body, '  }');

const CASES: readonly Case[] = [
  {
    name: 'misspelt directive gets a suggestion',
    text: ws('    location / { proxy_pas http://127.0.0.1:9000; }'),
    problems: ['unknown directive "proxy_pas" in <inline>:5'],
    hints: { 0: 'did you mean "proxy_pass"?' },
  },
  {
    name: 'header values that could never be sent: a line break in a literal, a name that is not a token',
    text: ws(
      '    add_header X-Foo "x\\n";',
      '    add_header "X Bar" y;',
      '    location / { proxy_set_header X-Uri "a\\rb$uri"; proxy_pass http://127.0.0.1:1; }',
    ),
    problems: [
      'the value of header "X-Foo" in "add_header" directive contains a control character in <inline>:5',
      'invalid header name "X Bar" in "add_header" directive in <inline>:6',
      'the value of header "X-Uri" in "proxy_set_header" directive contains a control character in <inline>:7',
    ],
    hints: { 0: 'a header value is one line', 1: 'letters, digits' },
  },
  {
    name: 'wrong context',
    text: http('  location / { }'),
    problems: ['"location" directive is not allowed here in <inline>:3'],
    hints: { 0: 'server, location' },
  },
  {
    name: 'proxy_pass outside location',
    text: ws('    proxy_pass http://127.0.0.1:1;'),
    problems: ['"proxy_pass" directive is not allowed here in <inline>:5'],
  },
  {
    name: 'arity',
    text: ws('    location / { proxy_pass; }'),
    problems: ['invalid number of arguments in "proxy_pass" directive in <inline>:5'],
  },
  {
    name: 'duplicate non-repeatable directive',
    text: ws('    location / {', '      proxy_pass http://127.0.0.1:1;', '      proxy_pass http://127.0.0.1:2;', '    }'),
    problems: ['"proxy_pass" directive is duplicate in <inline>:7'],
  },
  {
    name: 'duplicate timeout at one level',
    text: http('  proxy_read_timeout 1s;', '  proxy_read_timeout 2s;'),
    problems: ['"proxy_read_timeout" directive is duplicate in <inline>:4'],
  },
  {
    name: 'duplicate events',
    text: lines('events {}', 'events {}'),
    problems: ['"events" directive is duplicate in <inline>:2'],
  },
  {
    name: 'unexpected }',
    text: lines('events {}', '}'),
    problems: ['unexpected "}" in <inline>:2'],
  },
  {
    name: 'unclosed block',
    text: lines('events {}', 'http {', '  server {', '  }'),
    problems: ['unexpected end of file, expecting "}" in <inline>:4'],
  },
  {
    name: 'unterminated directive at end of file',
    text: lines('events {}', 'http {', '  server {', '    listen 80'),
    problems: ['unexpected end of file, expecting ";" or "}" in <inline>:4'],
  },
  {
    name: 'stray ;',
    text: lines('events {};'),
    problems: ['unexpected ";" in <inline>:1'],
  },
  {
    name: 'stray {',
    text: lines('events {}', 'http {', '  { }', '}'),
    problems: ['unexpected "{" in <inline>:3'],
  },
  {
    name: 'block directive without a block',
    text: http('  server;'),
    problems: ['directive "server" has no opening "{" in <inline>:3'],
  },
  {
    name: 'simple directive with a block',
    text: ws('    listen 81 { }'),
    problems: ['directive "listen" is not terminated by ";" in <inline>:5'],
  },
  {
    name: 'proxy_pass to a name that is neither an upstream nor resolvable',
    text: ws('    location / { proxy_pass http://backend; }'),
    problems: ['host not found in upstream "backend" in <inline>:5'],
    hints: { 0: 'upstream backend' },
  },
  {
    name: 'upstream server that does not resolve',
    text: http('  upstream u {', '    server foo:80;', '  }'),
    problems: ['host not found in upstream "foo:80" in <inline>:4'],
  },
  {
    name: 'duplicate upstream (case-insensitive)',
    text: http('  upstream x { server 127.0.0.1:1; }', '  upstream X { server 127.0.0.1:2; }'),
    problems: ['duplicate upstream "X" in <inline>:4'],
  },
  {
    name: 'invalid ports',
    text: http('  upstream x { server x:abc; }', '  server {', '    listen x:99999;', '  }'),
    problems: ['invalid port in upstream "x:abc" in <inline>:3', 'invalid port in "x:99999" of the "listen" directive in <inline>:5'],
  },
  {
    name: 'port 0 is not an upstream port',
    text: http('  upstream x { server 127.0.0.1:0; }'),
    problems: ['invalid port in upstream "127.0.0.1:0" in <inline>:3'],
  },
  {
    name: 'unknown variable',
    text: ws('    location / {', '      proxy_set_header X-Foo $foo;', '      return 200 "$Bar";', '    }'),
    problems: ['unknown "foo" variable in <inline>:6', 'unknown "bar" variable in <inline>:7'],
  },
  {
    name: 'proxy_cache_bypass and proxy_no_cache check their variables as nginx',
    text: ws('    location / { proxy_cache_bypass $cookie_nocache $arg_nocache; proxy_no_cache $http_pragma $nope; }'),
    problems: ['unknown "nope" variable in <inline>:5'],
  },
  {
    name: 'websocket_allowed_origins takes origins, hosts, *, none, null or values with variables',
    text: ws('    websocket_allowed_origins https://a.example *.b.example none null $scheme://$host;', '    websocket_allowed_origins https://a.example/path ftp:/x https://c.example:99999 $nope;'),
    problems: [
      'invalid origin "https://a.example/path" in "websocket_allowed_origins" in <inline>:6',
      'invalid origin "ftp:/x" in "websocket_allowed_origins" in <inline>:6',
      'invalid origin "https://c.example:99999" in "websocket_allowed_origins" in <inline>:6',
      'unknown "nope" variable in <inline>:6',
    ],
  },
  {
    name: 'websocket_max_message_size and websocket_max_frame_size take a size or off',
    text: ws('    websocket_max_message_size 1m;', '    websocket_max_frame_size off;', '    location / { websocket_max_message_size lots; websocket_max_frame_size 1 2; }'),
    problems: [
      '"websocket_max_message_size" directive invalid value in <inline>:7',
      'invalid number of arguments in "websocket_max_frame_size" directive in <inline>:7',
    ],
  },
  {
    name: 'websocket_ping_interval and websocket_ping_timeout take a time or off',
    text: ws('    websocket_ping_interval 30s;', '    websocket_ping_timeout off;', '    location / { websocket_ping_interval soon; }'),
    problems: ['"websocket_ping_interval" directive invalid value in <inline>:7'],
  },
  {
    name: 'websocket_message_rate takes a rate, burst=N, both, close, or off',
    text: ws('    websocket_message_rate 100/s burst=20 both close;', '    location / { websocket_message_rate 30r/m; }',
      '    location /a { websocket_message_rate off; }', '    location /b { websocket_message_rate fast; }', '    location /c { websocket_message_rate 5/s burst=x; }'),
    problems: [
      'invalid rate "fast" in <inline>:8',
      'invalid parameter "burst=x" in <inline>:9',
    ],
  },
  {
    name: 'an nginx variable of a module Sluice lacks says so, not "define it with map"',
    text: ws("    location / { return 200 \"$upstream_queue_time\"; }"),
    problems: ['unknown "upstream_queue_time" variable in <inline>:5'],
    hints: { 0: '$upstream_queue_time is nginx\'s, from a module Sluice does not support: Sluice has no upstream queue' },
  },
  {
    name: 'proxy_cache_path parameters, zones and proxy_cache_* values in nginx\'s words',
    text: http(
      '  proxy_cache_path c1 levels=3 keys_zone=a:1m;',
      '  proxy_cache_path c2 keys_zone=b:1k;',
      '  proxy_cache_path c3 keys_zone=c:1m inactive=x;',
      '  proxy_cache_path c4 keys_zone=d:1m foo=1;',
      '  proxy_cache_path c5 keys_zone=e:1m use_temp_path=x;',
      '  proxy_cache_path c6 inactive=1m;',
      '  proxy_cache_path c7 keys_zone=g:1m;',
      '  proxy_cache_path c8 keys_zone=g:1m;',
      '  proxy_cache_valid 999 1m;',
      '  proxy_cache_valid 200 x;',
      '  proxy_cache_methods PUT;',
      '  proxy_cache_background_update maybe;',
      '  server { listen 8080; location / { proxy_cache nope; proxy_pass http://127.0.0.1:9; } }',
      '  proxy_cache_use_stale error stale;',
    ),
    problems: [
      'invalid "levels" "levels=3" in <inline>:3',
      'keys zone "keys_zone=b:1k" is too small in <inline>:4',
      'invalid inactive value "inactive=x" in <inline>:5',
      'invalid parameter "foo=1" in <inline>:6',
      'invalid use_temp_path value "use_temp_path=x", it must be "on" or "off" in <inline>:7',
      '"proxy_cache_path" must have "keys_zone" parameter in <inline>:8',
      'duplicate zone "g" in <inline>:10',
      'invalid status "999" in <inline>:11',
      'invalid time value "x" in <inline>:12',
      'invalid value "PUT" in <inline>:13',
      'invalid value "maybe" in "proxy_cache_background_update" directive, it must be "on" or "off" in <inline>:14',
      '"proxy_cache" zone "nope" is unknown in <inline>:15',
      'invalid value "stale" in <inline>:16',
    ],
  },
  {
    name: 'malformed variable',
    text: ws('    add_header X "${host";'),
    problems: ['the closing bracket in "host" variable is missing in <inline>:5'],
  },
  {
    name: 'enum value',
    text: http('  proxy_http_version 2.0;'),
    problems: ['invalid value "2.0" in "proxy_http_version" directive, it must be "1.0" or "1.1" in <inline>:3'],
  },
  {
    name: 'flag value',
    text: http('  proxy_buffering yes;'),
    problems: ['invalid value "yes" in "proxy_buffering" directive, it must be "on" or "off" in <inline>:3'],
  },
  {
    name: 'bad durations and numbers',
    text: http('  proxy_read_timeout 10x;', '  keepalive_timeout 1.5s;', '  proxy_next_upstream_tries -1;'),
    problems: [
      '"proxy_read_timeout" directive invalid value in <inline>:3',
      '"keepalive_timeout" directive invalid value in <inline>:4',
      '"proxy_next_upstream_tries" directive invalid value in <inline>:5',
    ],
  },
  {
    name: 'bad proxy_next_upstream value',
    text: http('  proxy_next_upstream error http_418;'),
    problems: ['invalid value "http_418" in <inline>:3'],
  },
  {
    name: 'a duplicate listen in one server',
    text: http('  server {', '    listen 127.0.0.1:8080;', '    listen 127.0.0.1:8080;', '  }'),
    problems: ['a duplicate listen 127.0.0.1:8080 in <inline>:5'],
  },
  {
    name: 'two default servers for one address',
    text: http(
      '  server { listen 127.0.0.1:8080 default_server; }',
      '  server { listen 127.0.0.1:8080; }',
      '  server { listen 127.0.0.1:8080 default_server; }',
    ),
    problems: ['a duplicate default server for 127.0.0.1:8080 in <inline>:5'],
  },
  {
    name: 'duplicate locations (prefix and ^~ share a name; exact is separate)',
    text: ws('    location /x { }', '    location = /x { }', '    location ^~ /x { }', '    location = /x { }', '    location ~ /x { }', '    location ~ /x { }'),
    problems: ['duplicate location "/x" in <inline>:7', 'duplicate location "/x" in <inline>:8'],
  },
  {
    name: 'a map may not define a built-in (two maps of one variable are fine: the last one wins)',
    text: http('  map $uri $x { }', '  map $args $x { }', '  map $uri $host { }'),
    problems: ['the duplicate "$host" variable in <inline>:5'],
  },
  {
    name: 'proxy_pass with a URI in a regex or named location',
    text: ws('    location ~ ^/a { proxy_pass http://127.0.0.1:1/x; }', '    location @n { proxy_pass http://127.0.0.1:1/; }'),
    problems: [
      '"proxy_pass" cannot have URI part in location given by regular expression, or inside named location, or inside "if" statement, or inside "limit_except" block in <inline>:5',
      '"proxy_pass" cannot have URI part in location given by regular expression, or inside named location, or inside "if" statement, or inside "limit_except" block in <inline>:6',
    ],
  },
  {
    name: 'invalid regular expressions',
    text: ws('    location ~ ^/(a { }', '    server_name ~^(www.example.com;'),
    problems: [
      'invalid regular expression "^/(a": Unterminated group in <inline>:5',
      'invalid regular expression "^(www.example.com": Unterminated group in <inline>:6',
    ],
  },
  {
    name: 'no events section',
    text: lines('http {', '}'),
    problems: ['no "events" section in configuration in <inline>:0'],
  },
  {
    name: 'nested location rules',
    text: ws(
      '    location = / { location /x { } }',
      '    location @n { location /y { } }',
      '    location /a { location @z { } }',
      '    location /a/ { location /b { } }',
    ),
    problems: [
      'location "/x" cannot be inside the exact location "/" in <inline>:5',
      'location "/y" cannot be inside the named location "@n" in <inline>:6',
      'named location "@z" can be on the server level only in <inline>:7',
      'location "/b" is outside location "/a/" in <inline>:8',
    ],
  },
  {
    name: 'invalid location modifier',
    text: ws('    location ~~ /x { }'),
    problems: ['invalid location modifier "~~" in <inline>:5'],
  },
  {
    name: 'proxy_pass schemes (variables are checked per request)',
    text: ws(
      '    location /a { proxy_pass https://127.0.0.1; }',
      '    location /b { proxy_pass http://$host; }',
      '    location /c { proxy_pass ftp://x; }',
      '    location /d { proxy_pass http://unix:/tmp/s.sock:/; }',
      '    location /e { proxy_pass http://unix:; }',
    ),
    problems: [
      'invalid URL prefix in "ftp://x" in <inline>:7',
      'no path in the unix domain socket "unix:" in <inline>:9',
    ],
    hints: { 0: 'http[s]://' },
  },
  {
    name: 'unix sockets and schemes in upstream servers',
    text: http('  upstream u {', '    server unix:/tmp/s.sock;', '    server http://127.0.0.1;', '    server unix:;', '    server unix:/tmp/r.sock resolve;', '  }'),
    problems: [
      'invalid port in upstream "http://127.0.0.1" in <inline>:5',
      'no path in the unix domain socket "unix:" in <inline>:6',
      'invalid parameter "resolve" for the unix domain socket "unix:/tmp/r.sock" in <inline>:7',
    ],
    hints: { 0: 'without a scheme' },
  },
  {
    name: 'planned and invalid upstream server parameters',
    text: http('  upstream u {', '    server 127.0.0.1:1 route=a;', '    server 127.0.0.1:2 weight=0;', '    server 127.0.0.1:3 bogus;', '  }'),
    problems: [
      'the "route" parameter of the upstream "server" directive is not implemented yet in <inline>:4',
      'invalid parameter "weight=0" in <inline>:5',
      'invalid parameter "bogus" in <inline>:6',
    ],
    hints: { 0: 'not implemented yet', 2: 'max_conns=N, slow_start=TIME' },
  },
  {
    name: 'planned listen parameters and unknown ones; http2 needs ssl; ssl needs a certificate',
    text: http('  server {', '    listen 443 ssl;', '    listen 8443 http2 deferred;', '    listen 8080 nonsense;', '  }'),
    problems: [
      'no "ssl_certificate" is defined for the "listen ... ssl" directive in <inline>:3',
      'the "deferred" parameter of the "listen" directive is not implemented yet in <inline>:5',
      'the "http2" parameter of the "listen" directive needs "ssl" in <inline>:5',
      'invalid parameter "nonsense" in <inline>:6',
    ],
    hints: { 0: 'ssl_certificate_key', 1: 'not implemented yet', 2: 'h2c' },
  },
  {
    name: 'unix listen',
    text: http('  server { listen unix:/tmp/x.sock; }'),
    problems: ['unix domain sockets are not supported in "unix:/tmp/x.sock" of the "listen" directive in <inline>:3'],
  },
  {
    name: 'an upstream with no servers (reported at its closing brace, as nginx does)',
    text: http('  upstream empty {', '    keepalive 4;', '  }'),
    problems: ['no servers are inside upstream in <inline>:5'],
  },
  {
    name: 'upstream keepalive values',
    text: http('  upstream u {', '    server 127.0.0.1:1;', '    keepalive 0;', '    keepalive_requests x;', '    keepalive_timeout 5q;', '  }'),
    problems: [
      'invalid value "0" in "keepalive" directive in <inline>:5',
      '"keepalive_requests" directive invalid value in <inline>:6',
      '"keepalive_timeout" directive invalid value in <inline>:7',
    ],
  },
  {
    name: 'an explicit upstream may not be given a port in proxy_pass',
    text: ws('    location / { proxy_pass http://u:8080; }', '  }', '  upstream u { server 127.0.0.1:1; '),
    problems: ['upstream "u" may not have port 8080 in <inline>:5'],
  },
  {
    name: 'log formats',
    text: http(
      '  log_format combined "$remote_addr";',
      '  log_format main "$remote_addr";',
      '  log_format main "$status";',
      '  log_format x escape=xml "$status";',
      '  access_log /tmp/a.log nosuch;',
      '  access_log /tmp/b.log main buffer=lots;',
      '  access_log off main;',
      '  access_log syslog:nohostname;',
    ),
    problems: [
      'duplicate "log_format" name "combined" in <inline>:3',
      'duplicate "log_format" name "main" in <inline>:5',
      'unknown log format escaping "xml" in <inline>:6',
      'unknown log format "nosuch" in <inline>:7',
      'invalid buffer size "lots" in <inline>:8',
      'invalid parameter "main" in <inline>:9',
      'no syslog server specified in <inline>:10',
    ],
  },
  {
    name: 'return codes',
    text: ws('    location /a { return 1000; }', '    location /b { return ftp://x; }', '    location /c { return abc def; }'),
    problems: [
      'invalid return code "1000" in <inline>:5',
      'invalid return code "ftp://x" in <inline>:6',
      'invalid return code "abc" in <inline>:7',
    ],
  },
  {
    name: 'nginx directives Sluice does not implement',
    text: lines('master_process on;', 'events {', '  debug_connection 127.0.0.1;', '  worker_aio_requests 32;', '}', 'http {', '  sub_filter_once on;', '  geo $a {', '    default 0;', '  }', '}'),
    problems: [
      'unknown directive "master_process" in <inline>:1',
      'unknown directive "debug_connection" in <inline>:3',
      'unknown directive "worker_aio_requests" in <inline>:4',
      'unknown directive "sub_filter_once" in <inline>:7',
      'unknown directive "geo" in <inline>:8',
    ],
    hints: { 3: '"sub_filter_once" is an nginx directive that Sluice does not implement; remove it' },
  },
  {
    name: 'error_log levels and targets',
    text: lines('error_log stderr verbose;', 'error_log memory:32m;', 'events {}'),
    problems: ['invalid log level "verbose" in <inline>:1', 'unsupported error log target "memory:32m" in <inline>:2'],
  },
  {
    name: 'main-context values',
    text: lines('worker_processes many;', 'events { worker_connections 0; }', 'pid a b;'),
    problems: [
      '"worker_processes" directive invalid value in <inline>:1',
      '"worker_connections" directive invalid value in <inline>:2',
      'invalid number of arguments in "pid" directive in <inline>:3',
    ],
  },
  {
    name: 'map body errors',
    text: http(
      '  map $host $m {',
      '    hostnames;',
      '    default a;',
      '    default b;',
      '    example.com x;',
      '    EXAMPLE.com y;',
      '    a b c;',
      '    w*w.example.com z;',
      '    key { }',
      '  }',
      '  map $host m { }',
    ),
    problems: [
      'duplicate default map parameter in <inline>:6',
      'conflicting parameter "example.com" in <inline>:8',
      'invalid number of the map parameters in <inline>:9',
      'invalid hostname or wildcard "w*w.example.com" in <inline>:10',
      'unexpected "{" in <inline>:11',
      'invalid variable name "m" in <inline>:13',
    ],
  },
  {
    name: 'server names',
    text: ws('    server_name *example.com . w*w.example.com;'),
    problems: [
      'server name "*example.com" is invalid in <inline>:5',
      'server name "." is invalid in <inline>:5',
      'invalid server name or wildcard "w*w.example.com" in <inline>:5',
    ],
  },
  {
    name: 'add_header parameter and proxy_redirect forms',
    text: ws('    add_header X y sometimes;', '    proxy_redirect sometimes;', '    location / {', '      proxy_redirect default;', '      proxy_redirect http://a/ /;', '    }'),
    problems: [
      'invalid parameter "sometimes" in <inline>:5',
      'invalid parameter "sometimes" in <inline>:6',
      '"proxy_redirect default" cannot be combined with other proxy_redirect rules in <inline>:9',
    ],
  },
  {
    // nginx reads the header_timeout in seconds only (ngx_parse_time with is_sec).
    name: 'keepalive_timeout header timeout in milliseconds; client timeouts in the wrong place or malformed',
    text: ws('    keepalive_timeout 75s 500ms;', '    client_body_timeout 5x;', '    send_timeout;', '    location / { client_header_timeout 5s; }'),
    problems: [
      '"keepalive_timeout" directive invalid value in <inline>:5',
      '"client_body_timeout" directive invalid value in <inline>:6',
      'invalid number of arguments in "send_timeout" directive in <inline>:7',
      '"client_header_timeout" directive is not allowed here in <inline>:8',
    ],
    hints: { 0: 'Keep-Alive: timeout=' },
  },
  {
    // nginx's ngx_http_core_error_page wording, checked against nginx -t 1.22.
    name: 'error_page: a status out of range or 499, "=" with no status before it, a bad "=code", one argument; the flags',
    text: ws(
      '    error_page 200 /x;',
      '    error_page 499 /x;',
      '    error_page 4o4 /x;',
      '    error_page =200 /x;',
      '    error_page 404 =2x /x;',
      '    error_page 404;',
      '    error_page 404 /$;',
      '    recursive_error_pages yes;',
      '    location / { proxy_intercept_errors 1; }',
    ),
    problems: [
      'value "200" must be between 300 and 599 in <inline>:5',
      'invalid value "499" in <inline>:6',
      'invalid value "4o4" in <inline>:7',
      'invalid value "=200" in <inline>:8',
      'invalid value "=2x" in <inline>:9',
      'invalid number of arguments in "error_page" directive in <inline>:10',
      'invalid variable name in <inline>:11',
      'invalid value "yes" in "recursive_error_pages" directive, it must be "on" or "off" in <inline>:12',
      'invalid value "1" in "proxy_intercept_errors" directive, it must be "on" or "off" in <inline>:13',
    ],
  },
  {
    name: 'proxy_cookie_*: off or rules, off once per level, at most three flags, regexes checked (nginx 1.22 wording)',
    text: ws(
      '    proxy_cookie_domain example.com;',
      '    proxy_cookie_path /a/ /b/;',
      '    proxy_cookie_path off;',
      '    proxy_cookie_flags off;',
      '    proxy_cookie_flags sid secure;',
      '    location / { proxy_cookie_domain off; proxy_cookie_domain off; proxy_pass http://127.0.0.1:1; }',
      '    location /f { proxy_cookie_flags sid secure httponly samesite=lax nosecure; proxy_cookie_path ~(a /b; proxy_pass http://127.0.0.1:1; }',
      '    location /o { proxy_cookie_flags OFF; proxy_pass http://127.0.0.1:1; }',
    ),
    problems: [
      'invalid parameter "example.com" in <inline>:5',
      '"proxy_cookie_path" directive is duplicate in <inline>:7',
      '"proxy_cookie_flags" directive is duplicate in <inline>:9',
      '"proxy_cookie_domain" directive is duplicate in <inline>:10',
      'invalid number of arguments in "proxy_cookie_flags" directive in <inline>:11',
      'invalid regular expression "(a": Unterminated group in <inline>:11',
      'invalid parameter "OFF" in <inline>:12',
    ],
    hints: { 0: 'proxy_cookie_domain DOMAIN REPLACEMENT', 1: 'turns every rule of this level off' },
  },
  {
    name: 'if conditions nginx refuses, with its words (ngx_http_rewrite_if_condition)',
    text: ws(
      '    location /a { if (a) { return 200; } }',
      '    location /b { if $a { return 200; } }',
      '    location /c { if ($args == b) { return 200; } }',
      '    location /d { if ($args = b c) { return 200; } }',
      '    location /e { if (-z $uri) { return 200; } }',
      '    location /f { if (-f) { return 200; } }',
      '    location /g { if ($args { return 200; } }',
      '    location /h { if () { return 200; } }',
      '    location /i { if ( ) { return 200; } }',
    ),
    problems: [
      'invalid condition "a" in <inline>:5',
      'invalid condition "$a" in <inline>:6',
      'unexpected "==" in condition in <inline>:7',
      'invalid condition "$args" in <inline>:8',
      'invalid condition "-z" in <inline>:9',
      'invalid condition "-f" in <inline>:10',
      'invalid condition "$args" in <inline>:11',
      'invalid condition ")" in <inline>:12',
      'invalid condition ")" in <inline>:13',
    ],
    hints: { 2: 'the operators are' },
  },
  {
    name: 'rewrite and set arguments nginx refuses',
    text: ws(
      '    location /a { rewrite ^ ""; }',
      '    location /b { rewrite ^ /x foo; }',
      '    location /c { set a 1; }',
      '    location /d { set $uri 1; }',
      '    location /e { set $x 1; return 200 "$x$y"; }',
    ),
    problems: [
      'empty replacement in <inline>:5',
      'invalid parameter "foo" in <inline>:6',
      'invalid variable name "a" in <inline>:7',
      'the duplicate "uri" variable in <inline>:8',
      'unknown "y" variable in <inline>:9',
    ],
    hints: { 4: 'set $y' },
  },
  {
    name: 'what "if" may hold: in a location some location directives, in a server only rewrite directives; no "if" in "if"',
    text: ws(
      '    location /a { if ($args) { proxy_set_header A b; } }',
      '    location /b { if ($args) { if ($uri) { } } }',
      '    location /c { if ($args) { proxy_pass http://127.0.0.1:1/x; } }',
      '    if ($args) { root /x; }',
      '    location /d { if ($args) { location /e { } } }',
      '    location /f { if ($args) { root /x; add_header A b; proxy_pass http://127.0.0.1:1; set $v 1; rewrite ^ /g break; break; return 204; } }',
    ),
    problems: [
      '"proxy_set_header" directive is not allowed here in <inline>:5',
      '"if" directive is not allowed here in <inline>:6',
      '"proxy_pass" cannot have URI part in location given by regular expression, or inside named location, or inside "if" statement, or inside "limit_except" block in <inline>:7',
      '"root" directive is not allowed here in <inline>:8',
      '"location" directive is not allowed here in <inline>:9',
    ],
  },
];

for (const c of CASES) {
  test(`invalid config: ${c.name}`, async () => {
    const problems = await bad(c.text);
    assert.deepEqual(problems.map(show), c.problems);
    for (const [index, hint] of Object.entries(c.hints ?? {})) {
      const got = problems[Number(index)]?.hint ?? '';
      assert.ok(got.includes(hint), `hint ${index}: ${JSON.stringify(got)} should include ${JSON.stringify(hint)}`);
    }
  });
}

test('every problem is collected in one pass, in reading order', async () => {
  const problems = await bad(lines(
    'events {}',
    'http {',
    '  proxy_read_timeout forever;',
    '  server {',
    '    listen 80;',
    '    lisen 81;',
    '    location / {',
    '      proxy_pass http://nowhere;',
    '      add_header X $nope;',
    '    }',
    '  }',
    '  upstream empty { }',
    '}',
  ));
  assert.deepEqual(problems.map(show), [
    '"proxy_read_timeout" directive invalid value in <inline>:3',
    'unknown directive "lisen" in <inline>:6',
    'host not found in upstream "nowhere" in <inline>:8',
    'unknown "nope" variable in <inline>:9',
    'no servers are inside upstream in <inline>:12',
  ]);
  assert.equal(problems[1]!.hint, 'did you mean "listen"?');
});

test('a config with only a syntax error reports just that (no follow-on noise)', async () => {
  const problems = await bad(lines('http {', '  server {', '    listen 80', '  }', '}'));
  assert.deepEqual(problems.map(show), ['unexpected "}" in <inline>:4']);
});
