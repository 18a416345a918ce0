/**
 * The ISO itself, with `xorriso -as mkisofs`: ISO 9660 with Rock Ridge and Joliet, El
 * Torito records for isolinux (BIOS) and the GRUB EFI image (UEFI), and an isohybrid MBR
 * (isolinux's isohdpfx.bin) with a GPT entry for the EFI image, so the same file boots
 * from a CD drive or written to a disk.
 *
 * Reproducible: xorriso takes every date (volume dates, file dates, the volume "UUID" and
 * the GPT ids derived from it) from SOURCE_DATE_EPOCH; it writes directories and file data
 * in sorted order, and the MBR and volume ids are fixed. The same staged tree and date
 * give the same bytes.
 */
import { childEnv, run } from '../process/run.js';
import { BOOT_CATALOG, EFI_IMAGE, ISOLINUX_BIN } from './loaders.js';
import { LOADER_FILES, type BootMode, type Tools } from './tools.js';

/** `YYYYMMDDhhmmsscc` in UTC, xorriso's form of a fixed date. */
export function isoDate(epoch: number): string {
  const d = new Date(epoch * 1000);
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${p(d.getUTCFullYear(), 4)}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}00`;
}

export function xorrisoArgs(o: {
  stage: string;
  output: string;
  volumeId: string;
  mode: BootMode;
  epoch: number;
}): string[] {
  const date = isoDate(o.epoch);
  const args = ['-as', 'mkisofs', '-o', o.output, '-V', o.volumeId, '-r', '-J', '-joliet-long'];
  // Every date from the epoch: the volume's (and the MBR id and GPT GUIDs made from it), and
  // each file's, whatever the staged files' own times.
  args.push(`--modification-date=${date}`, '--set_all_file_dates', date);
  args.push('--gpt_disk_guid', 'modification-date');
  args.push('-isohybrid-mbr', LOADER_FILES.isohybridMbr.file, '-c', BOOT_CATALOG);
  if (o.mode !== 'uefi') {
    args.push('-b', ISOLINUX_BIN, '-no-emul-boot', '-boot-load-size', '4', '-boot-info-table');
  }
  if (o.mode !== 'bios') {
    if (o.mode === 'both') args.push('-eltorito-alt-boot');
    args.push('-e', EFI_IMAGE, '-no-emul-boot', '-isohybrid-gpt-basdat');
  }
  args.push(o.stage);
  return args;
}

export async function makeIso(o: {
  tools: Tools;
  stage: string;
  output: string;
  volumeId: string;
  mode: BootMode;
  epoch: number;
}): Promise<void> {
  await run(o.tools.xorriso, xorrisoArgs(o), {
    env: childEnv({ SOURCE_DATE_EPOCH: String(o.epoch), TZ: 'UTC' }),
    debianPackage: 'xorriso',
  });
}
