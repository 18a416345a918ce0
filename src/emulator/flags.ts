/**
 * What the two emulator front ends' flags share (src/emulator/command.ts, pve/command.ts):
 * the --kind that picks one, the Mbit/s caps, and leaving unset options out so that
 * each emulator fills in its own defaults.
 */
import { choice, decimal } from '../inputs/fields.js';

/** The emulator kinds, read by both front ends' flags. */
export const kindFlag = choice(['elasticstack', 'proxmox'], {
  default: 'elasticstack',
  expected: 'elasticstack (default) or proxmox',
});

export const KIND_DESCRIPTION =
  'elasticstack, or proxmox for a Proxmox VE API (see --kind proxmox --help)';

/** A bandwidth cap in Mbit/s (the options take bytes per second: times 125,000). */
export const mbitFlag = () =>
  decimal({ min: 0, above: true, expected: 'a positive number of Mbit/s, e.g. 50' });

/** `o` without its undefined members (the emulator fills in its own defaults). */
export function given<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}
