// The benches' stand-in for a boot ISO: mostly incompressible (kernel, initramfs), a
// little text and some zero padding, written 4 MiB at a time.
import { randomBytes } from 'node:crypto';
import { open } from 'node:fs/promises';

const MiB = 2 ** 20;

/** Writes an ISO-like image of `size` bytes to `file`. */
export async function makeImage(file: string, size: number): Promise<void> {
  const handle = await open(file, 'w');
  for (let at = 0; at < size; at += 4 * MiB) {
    const part = randomBytes(Math.min(4 * MiB, size - at));
    part.fill('isolinux.cfg grub.cfg text ', 0, Math.floor(part.length * 0.03));
    part.fill(0, Math.floor(part.length * 0.97));
    await handle.write(part, 0, part.length, at);
  }
  await handle.close();
}
