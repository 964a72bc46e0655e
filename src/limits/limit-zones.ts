/**
 * The limit zones of one config generation with the store that counts them: what the preaccess
 * phase looks a limit's zone up in. The store outlives reloads (ProxyServer), so a zone keeps its
 * state across them while its name, kind, size and key stay the same (nginx keeps a shared
 * memory zone of the same name and size).
 */
import type { LimitZone } from '../config/types.js';
import type { LimitStore, ZoneRef } from './limit-store.js';

export interface ZoneEntry {
  readonly zone: LimitZone;
  /** What the store knows the zone by (plain data: it may cross to the primary process). */
  readonly ref: ZoneRef;
}

export class LimitZones {
  readonly #zones = new Map<string, ZoneEntry>();

  constructor(zones: ReadonlyMap<string, LimitZone>, readonly store: LimitStore) {
    for (const [name, zone] of zones) {
      this.#zones.set(name, { zone, ref: { name, kind: zone.kind, size: zone.size, keyText: zone.keyText, rate: zone.rate, ...(zone.fleet === true ? { fleet: true } : {}) } });
    }
  }

  /** The zone a validated config names (resolve.ts checked that it exists). */
  get(name: string): ZoneEntry {
    const z = this.#zones.get(name);
    if (z === undefined) throw new Error(`internal: limit zone "${name}" missing from the resolved config`);
    return z;
  }
}
