/**
 * The tier-up flag the `sluice` command sets (cli/jit-settings.ts, where the why is), as a pure
 * function of the V8 version, Node's arguments and the environment.
 */
import { givenToNode } from './node-options.js';

/** V8's defaults divided by this. */
const EARLIER = 4;

/** The flag that sets when V8 tiers up to TurboFan, and V8's default, on this V8 line; null if unknown. */
export function tierUpFlag(v8Version: string): { readonly flag: string; readonly dflt: number } | null {
  const [major = 0, minor = 0] = v8Version.split('.').map(Number);
  if (major === 11 && minor <= 3) return { flag: '--interrupt-budget', dflt: 66 * 1024 };
  if (major >= 12) return { flag: '--invocation-count-for-turbofan', dflt: 3000 };
  return null;
}

/** Whether Node's arguments or NODE_OPTIONS already set a tier-up threshold. */
export function operatorSetTierUp(execArgv: readonly string[], nodeOptions: string): boolean {
  return givenToNode(/^--(interrupt[-_]budget|invocation[-_]count[-_]for[-_]turbofan)(=|$)/, execArgv, nodeOptions);
}

/** The flag string the `sluice` command sets, or null when it sets none. */
export function jitFlags(v8Version: string, execArgv: readonly string[], env: NodeJS.ProcessEnv): string | null {
  if (env.SLUICE_V8_JIT === 'default' || operatorSetTierUp(execArgv, env.NODE_OPTIONS ?? '')) return null;
  const t = tierUpFlag(v8Version);
  return t === null ? null : `${t.flag}=${Math.round(t.dflt / EARLIER)}`;
}
