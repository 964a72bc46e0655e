/** nginx-style command line: `sluice [-c FILE] [-p PREFIX] [-g DIRECTIVES] [-t|-T] [-q] [-s SIGNAL] [-v|-V] [-h]`. */
export interface CliArgs {
  readonly command: 'run' | 'test' | 'version' | 'help' | 'echo' | 'client' | 'signal';
  /** `-s stop|quit|reload|reopen`. */
  readonly signal?: string;
  readonly configFile: string | null;
  readonly prefix: string | null;
  readonly globalDirectives: string | null;
  readonly dump: boolean;
  readonly quiet: boolean;
  readonly verbose: boolean;
  /** `--wait` (with `-s stop|quit`): return once the instance has exited. */
  readonly wait: boolean;
  readonly rest: readonly string[];
}

export class UsageError extends Error {}

export function parseArgs(argv: readonly string[]): CliArgs {
  if (argv[0] === 'echo' || argv[0] === 'client') {
    return { command: argv[0], configFile: null, prefix: null, globalDirectives: null, dump: false, quiet: false, verbose: false, wait: false, rest: argv.slice(1) };
  }
  let command: CliArgs['command'] = 'run';
  let configFile: string | null = null;
  let prefix: string | null = null;
  let globalDirectives: string | null = null;
  let dump = false;
  let quiet = false;
  let verbose = false;
  let wait = false;
  let signal: string | undefined;
  // nginx's ngx_get_options: flags may be grouped ("-tq") and a value may be attached ("-cFILE")
  // or be the next argument.
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '--help') {
      command = 'help';
      continue;
    }
    if (a === '--wait') {
      wait = true;
      continue;
    }
    if (!a.startsWith('-') || a.length < 2) throw new UsageError(`invalid option: "${a}"`);
    for (let j = 1; j < a.length; j++) {
      const flag = a[j] as string;
      const value = (what: string): string => {
        const attached = a.slice(j + 1);
        j = a.length;
        const v = attached !== '' ? attached : argv[++i];
        if (v === undefined) throw new UsageError(`option "-${flag}" requires ${what}`);
        return v;
      };
      switch (flag) {
        case 'c': configFile = value('file name'); break;
        case 'p': prefix = value('directory name'); break;
        case 'g': globalDirectives = value('parameter'); break;
        case 't': command = 'test'; break;
        case 'T': command = 'test'; dump = true; break;
        case 'q': quiet = true; break;
        case 'v': command = 'version'; break;
        case 'V': command = 'version'; verbose = true; break;
        case 'h': case '?': command = 'help'; break;
        case 's': {
          signal = value('parameter');
          if (!['stop', 'quit', 'reopen', 'reload'].includes(signal)) throw new UsageError(`invalid option: "-s ${signal}"`);
          command = 'signal';
          break;
        }
        default: throw new UsageError(`invalid option: "${flag}"`);
      }
    }
  }
  // Sluice's own option: waiting makes sense only for a signal that ends the instance.
  if (wait && !(command === 'signal' && (signal === 'stop' || signal === 'quit'))) throw new UsageError('option "--wait" goes with "-s stop" or "-s quit"');
  return { command, configFile, prefix, globalDirectives, dump, quiet, verbose, wait, rest: [], ...(signal !== undefined ? { signal } : {}) };
}

export const HELP = `Usage: sluice [-?hvVtTq] [-s signal] [-c filename] [-p prefix] [-g directives]
       sluice echo [--port N] [--host H] [--id NAME]
       sluice client [-H header] [-s subprotocol] [-x message] [--ca file] [-n] URL

Options:
  -?,-h         : this help
  -v            : show version and exit
  -V            : show version and build details and exit
  -t            : test configuration and exit
  -T            : test configuration, dump it and exit
  -q            : suppress non-error messages during configuration testing
  -s signal     : send signal to the running instance named by the config's pid file
                  (default: sluice.pid in the prefix): stop (fast), quit (graceful),
                  reopen (log files), reload (configuration)
  --wait        : with -s stop|quit, return once the instance has exited
  -p prefix     : set prefix path (default: the directory of the config file)
  -c filename   : set configuration file (default: the embedded demo config,
                  which also starts two echo backends on 127.0.0.1:8010 and :8011)
  -g directives : set global directives out of configuration file

Commands:
  echo          : run a WebSocket + HTTP echo backend (for demos and tests)
  client        : a WebSocket client in the terminal, as wscat (sluice client -h)
`;
