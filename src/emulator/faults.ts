/**
 * Which requests get an injected fault. One draw per eligible request from a seeded
 * PRNG (mulberry32) picks at most one fault: the rates are shares of the same draw, so
 * errorRate 0.1 + busyRate 0.1 faults 20% of requests. With a seed and requests made one
 * after another, the sequence of faults is repeatable.
 */
import type { FaultKind, Faults } from './options.js';

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Each fault kind and the field of Faults holding its share of requests. */
export const FAULT_RATES = {
  error: 'errorRate',
  throttle: 'throttleRate',
  busy: 'busyRate',
  cut: 'cutRate',
} as const satisfies Record<FaultKind, keyof Faults>;

const KINDS = Object.keys(FAULT_RATES) as FaultKind[];

/** The shares of all faults together: one draw picks at most one, so at most 1. */
export function totalRate(f: Faults): number {
  return KINDS.reduce((sum, kind) => sum + (f[FAULT_RATES[kind]] ?? 0), 0);
}

export class FaultPicker {
  private random: () => number;

  constructor(private faults: Faults) {
    this.random = mulberry32(faults.seed ?? Math.floor(Math.random() * 2 ** 32));
  }

  get current(): Faults {
    return this.faults;
  }

  /** New faults; a given seed restarts the PRNG, else its sequence carries on. */
  set(faults: Faults): void {
    this.faults = faults;
    if (faults.seed !== undefined) this.random = mulberry32(faults.seed);
  }

  /** The fault for a request, if any; `isWrite` is for faultOn 'writes' (the default). */
  pick(isWrite: boolean): FaultKind | undefined {
    const f = this.faults;
    if (!isWrite && f.faultOn !== 'all') return undefined;
    if (totalRate(f) === 0) return undefined;
    const r = this.random();
    let edge = 0;
    for (const kind of KINDS) {
      edge += f[FAULT_RATES[kind]] ?? 0;
      if (r < edge) return kind;
    }
    return undefined;
  }
}
