/**
 * Whether the operator gave Node a V8 flag themselves, on Node's command line (`execArgv`) or in
 * NODE_OPTIONS: the `sluice` command then leaves that setting alone (memory-settings.ts,
 * jit-settings.ts).
 */
export function givenToNode(flag: RegExp, execArgv: readonly string[], nodeOptions: string): boolean {
  return [...execArgv, ...nodeOptions.split(/\s+/)].some((a) => flag.test(a));
}
