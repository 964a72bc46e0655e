/**
 * `sluice client URL`: the wscat habit of the articles that teach nginx WebSocket proxying, in the
 * box. Line mode: each line typed is sent as a text message; what arrives is printed with a
 * direction marker ("< " in, "> " out), binary messages as hex; `/ping [data]` and
 * `/close [code] [reason]` are commands (`//...` sends a line that starts with "/"); the close
 * code and reason are shown when the connection ends. With `-x MSG` it sends MSG, prints the
 * first answer (or what arrives within `-w SECONDS`) and exits: for scripts.
 */
import { readFileSync } from 'node:fs';
import { createInterface, clearLine, cursorTo } from 'node:readline';
import type { Interface } from 'node:readline';
import { isValidCloseCode } from '../websocket/close-codes.js';
import { HandshakeError, connectWebSocket, parseWsUrl } from './connection.js';
import type { ClientOptions, WsClientConnection } from './connection.js';

export const CLIENT_USAGE = `usage: sluice client [options] URL
  URL                     ws://HOST[:PORT]/PATH or wss://... (ws:// when no scheme is given)
  -H, --header "N: V"     add a request header (repeatable)
  -s, --subprotocol P     offer a subprotocol (repeatable)
  -o, --origin ORIGIN     send an Origin header
      --ca FILE           trust the certificate authorities in FILE (PEM) for wss://
  -n, --insecure          do not check the server's certificate (wss://)
  -x, --execute MSG       send MSG (repeatable), print the first answer and exit
  -w, --wait SECONDS      with -x: print what arrives for SECONDS, then close and exit
  -h, --help              this help
In line mode each line is a text message; commands: /ping [data], /close [code] [reason];
a line starting with "//" is sent without its first "/".
`;

export interface ClientCommandIo {
  /** @default process.stdin */
  readonly stdin?: NodeJS.ReadableStream & { isTTY?: boolean };
  /** @default process.stdout */
  readonly stdout?: NodeJS.WritableStream & { isTTY?: boolean };
  /** @default process.stderr */
  readonly stderr?: { write(text: string): unknown };
}

interface ClientArgs {
  readonly url: URL;
  readonly options: ClientOptions;
  readonly execute: readonly string[];
  readonly waitMs: number | null;
}

/** A usage problem: the command prints it with the usage and exits 1. */
export class ClientUsageError extends Error {}

export function parseClientArgs(argv: readonly string[]): ClientArgs | 'help' {
  const headers: [string, string][] = [];
  const protocols: string[] = [];
  const execute: string[] = [];
  let origin: string | undefined;
  let caFile: string | undefined;
  let insecure = false;
  let waitMs: number | null = null;
  let target: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const eq = arg.startsWith('--') ? arg.indexOf('=') : -1;
    const name = eq > 0 ? arg.slice(0, eq) : arg;
    const value = (): string => {
      const v = eq > 0 ? arg.slice(eq + 1) : argv[++i];
      if (v === undefined) throw new ClientUsageError(`option "${name}" needs a value`);
      return v;
    };
    switch (name) {
      case '-h': case '--help': return 'help';
      case '-H': case '--header': {
        const h = value();
        const colon = h.indexOf(':');
        if (colon <= 0 || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(h.slice(0, colon).trim())) throw new ClientUsageError(`a header is "Name: value", got "${h}"`);
        headers.push([h.slice(0, colon).trim(), h.slice(colon + 1).trim()]);
        break;
      }
      case '-s': case '--subprotocol': protocols.push(value()); break;
      case '-o': case '--origin': origin = value(); break;
      case '--ca': caFile = value(); break;
      case '-n': case '--insecure': case '--no-check': insecure = true; break;
      case '-x': case '--execute': execute.push(value()); break;
      case '-w': case '--wait': {
        const v = value();
        const seconds = Number(v);
        if (!/^\d+(\.\d+)?$/.test(v)) throw new ClientUsageError(`--wait takes seconds, got "${v}"`);
        waitMs = seconds * 1000;
        break;
      }
      case '-c': case '--connect': target = value(); break;
      default:
        if (arg.startsWith('-')) throw new ClientUsageError(`unknown option "${arg}"`);
        if (target !== undefined) throw new ClientUsageError(`one URL only ("${target}", then "${arg}")`);
        target = arg;
    }
  }
  if (target === undefined) throw new ClientUsageError('a URL is needed');
  let url: URL;
  try {
    url = parseWsUrl(target);
  } catch (e) {
    throw new ClientUsageError((e as Error).message);
  }
  let ca: Buffer | undefined;
  if (caFile !== undefined) {
    try {
      ca = readFileSync(caFile);
    } catch (e) {
      throw new ClientUsageError(`cannot read --ca "${caFile}": ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  }
  const options: ClientOptions = {
    headers, protocols, insecure,
    ...(origin !== undefined ? { origin } : {}),
    ...(ca !== undefined ? { ca } : {}),
  };
  return { url, options, execute, waitMs };
}

/** A binary message as hex bytes, as the line shows it. */
export function hexBytes(data: Buffer): string {
  return data.toString('hex').replace(/(..)(?!$)/g, '$1 ');
}

function describe(data: Buffer, binary: boolean): string {
  return binary ? `<binary ${data.length} byte${data.length === 1 ? '' : 's'}> ${hexBytes(data)}`.trimEnd() : data.toString('utf8');
}

function closedLine(code: number, reason: string): string {
  return `Disconnected (code: ${code}, reason: ${JSON.stringify(reason)})`;
}

/**
 * Runs the command until the connection ends. Resolves with the exit code: 0 after a close, 1 when
 * the connection or the handshake failed. Never calls process.exit.
 */
export async function runClientCommand(argv: readonly string[], io: ClientCommandIo = {}): Promise<number> {
  const stdout = io.stdout ?? process.stdout;
  const stderr = io.stderr ?? process.stderr;
  let args: ClientArgs | 'help';
  try {
    args = parseClientArgs(argv);
  } catch (e) {
    if (!(e instanceof ClientUsageError)) throw e;
    stderr.write(`sluice client: ${e.message}\n${CLIENT_USAGE}`);
    return 1;
  }
  if (args === 'help') {
    stdout.write(CLIENT_USAGE);
    return 0;
  }
  let ws: WsClientConnection;
  try {
    ws = await connectWebSocket(args.url, args.options);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    stderr.write(`error: ${e instanceof HandshakeError ? err.message : err.code ? `${err.code}: ${err.message}` : err.message}\n`);
    return 1;
  }
  ws.on('error', (e) => stderr.write(`error: ${e.message}\n`));
  return args.execute.length > 0 ? executeMode(ws, args, stdout, stderr) : lineMode(ws, io.stdin ?? process.stdin, stdout);
}

/** -x: send, print the first answer (or all within --wait), close with 1000, exit 0. */
function executeMode(ws: WsClientConnection, args: ClientArgs, stdout: NodeJS.WritableStream, stderr: { write(text: string): unknown }): Promise<number> {
  return new Promise((done) => {
    let timer: NodeJS.Timeout | null = null;
    let finished = false;
    const finish = (): void => {
      finished = true;
      if (timer) clearTimeout(timer);
      ws.close();
    };
    ws.on('message', (data, binary) => {
      // Without --wait the first answer is the answer: what was in flight behind it is not printed.
      if (finished) return;
      // The answers alone on stdout, for scripts (binary as hex).
      stdout.write(`${binary ? hexBytes(data) : data.toString('utf8')}\n`);
      if (args.waitMs === null) finish();
    });
    ws.on('close', (code, reason) => {
      if (timer) clearTimeout(timer);
      if (!ws.closing || code !== 1000) stderr.write(`${closedLine(code, reason)}\n`);
      done(0);
    });
    for (const m of args.execute) ws.sendText(m);
    // Without --wait: the first answer ends it; a server that never answers gets 10 s.
    timer = setTimeout(finish, args.waitMs ?? 10_000);
  });
}

/** Line mode: each line is a text message; what arrives is printed with "< ", sent lines with "> ". */
function lineMode(ws: WsClientConnection, stdin: NodeJS.ReadableStream & { isTTY?: boolean }, stdout: NodeJS.WritableStream & { isTTY?: boolean }): Promise<number> {
  const tty = stdin.isTTY === true && stdout.isTTY === true;
  const rl: Interface = createInterface({ input: stdin, output: tty ? stdout : undefined, prompt: '> ', terminal: tty });
  let closed = false;
  /** Prints a line above the prompt, as wscat does (no prompt once the connection is gone). */
  const print = (line: string): void => {
    if (tty) {
      clearLine(stdout, 0);
      cursorTo(stdout, 0);
      stdout.write(`${line}\n`);
      if (!closed) rl.prompt(true);
    } else {
      stdout.write(`${line}\n`);
    }
  };
  print('Connected (press CTRL+C to quit)');
  ws.on('message', (data, binary) => print(`< ${describe(data, binary)}`));
  ws.on('pong', (data) => print(`< pong${data.length > 0 ? ` ${data.toString('utf8')}` : ''}`));
  ws.on('ping', (data) => print(`< ping${data.length > 0 ? ` ${data.toString('utf8')}` : ''}`));
  return new Promise((done) => {
    ws.on('close', (code, reason) => {
      closed = true;
      print(closedLine(code, reason));
      rl.close();
      done(0);
    });
    rl.on('line', (line) => {
      if (closed) return;
      if (!tty) stdout.write(`> ${line}\n`);
      if (line.startsWith('/') && !line.startsWith('//')) command(ws, line, print);
      else ws.sendText(line.startsWith('//') ? line.slice(1) : line);
      if (tty && !ws.closing) rl.prompt();
    });
    // Ctrl-C or the end of the input: close politely; a second Ctrl-C drops the connection.
    rl.on('SIGINT', () => (ws.closing ? ws.terminate() : ws.close()));
    rl.on('close', () => {
      if (!closed) ws.close();
    });
    if (tty) rl.prompt();
  });
}

function command(ws: WsClientConnection, line: string, print: (line: string) => void): void {
  const [name = '', ...rest] = line.slice(1).split(' ');
  try {
    switch (name) {
      case 'ping':
        ws.ping(rest.join(' '));
        return;
      case 'close': {
        const code = rest[0] === undefined || rest[0] === '' ? 1000 : Number(rest[0]);
        if (!isValidCloseCode(code)) {
          print(`! close code ${rest[0]} may not be sent (1000-1003, 1007-1014, 3000-4999)`);
          return;
        }
        ws.close(code, rest.slice(1).join(' '));
        return;
      }
      default:
        print(`! unknown command "/${name}": /ping [data], /close [code] [reason]; "//" sends a line starting with "/"`);
    }
  } catch (e) {
    print(`! ${(e as Error).message}`);
  }
}
