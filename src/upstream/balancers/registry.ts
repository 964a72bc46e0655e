import type { BalancerFactory } from './balancer.js';
import { roundRobin } from './round-robin.js';

/** Balancing methods by their config name; the default method is round robin. */
export const BALANCERS: ReadonlyMap<string, BalancerFactory> = new Map([['round_robin', roundRobin]]);
