/**
 * Storages as directories: a shared storage has one directory for all nodes, any other
 * one per node, each holding `template/iso/<file>` as a Proxmox dir storage does. The
 * content list, a volume's info and existence, the upload's last step (the copy into
 * place) and deletion (proxmox-api.md section 3).
 */
import { mkdir, readdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { failure, paramError } from './pve-error.js';
import type { PveStorage } from './options.js';
import { statOrUndefined } from '../../files.js';

const ISO_EXT = /\.(iso|img)$/i;

export interface IsoFile {
  volid: string;
  name: string;
  size: number;
  ctime: number;
}

/** Proxmox's normalize_content_filename: the base name, odd characters made `_`. */
export function normalizeFilename(name: string): string {
  const base = name.replace(/^.*[/\\]/, '');
  return base.replace(/[^A-Za-z0-9_.-]/g, '_');
}

export class Storages {
  private readonly byId: Map<string, Required<PveStorage>>;

  constructor(
    private readonly dataDir: string,
    storages: PveStorage[],
    private readonly nodes: string[],
  ) {
    this.byId = new Map(
      storages.map((s) => [
        s.id,
        {
          id: s.id,
          content: s.content ?? ['iso'],
          shared: s.shared ?? true,
          type: s.type ?? 'dir',
        },
      ]),
    );
  }

  async init(): Promise<void> {
    for (const s of this.byId.values()) {
      if (s.type !== 'dir') continue;
      for (const node of s.shared ? [this.nodes[0] ?? ''] : this.nodes) {
        await mkdir(this.isoDir(s.id, node), { recursive: true });
      }
    }
  }

  all(): Required<PveStorage>[] {
    return [...this.byId.values()];
  }

  /** The storage, or Proxmox's 500 `storage 'x' does not exist`. */
  get(id: string): Required<PveStorage> {
    const s = this.byId.get(id);
    if (!s) throw failure(`storage '${id}' does not exist`);
    return s;
  }

  isoDir(id: string, node: string): string {
    const s = this.get(id);
    return s.shared
      ? path.join(this.dataDir, 'storage', id, 'template', 'iso')
      : path.join(this.dataDir, 'nodes', node, 'storage', id, 'template', 'iso');
  }

  async listIso(id: string, node: string): Promise<IsoFile[]> {
    const s = this.get(id);
    if (s.type !== 'dir' || !s.content.includes('iso')) return [];
    const dir = this.isoDir(id, node);
    const out: IsoFile[] = [];
    for (const name of (await readdir(dir)).sort()) {
      if (!ISO_EXT.test(name)) continue;
      const st = await statOrUndefined(path.join(dir, name));
      if (!st?.isFile()) continue;
      out.push({
        volid: `${id}:iso/${name}`,
        name,
        size: st.size,
        ctime: Math.floor(st.ctimeMs / 1000),
      });
    }
    return out;
  }

  /**
   * The file behind a volume ID `<storage>:iso/<name>` (or `iso/<name>` on `storage`), or
   * undefined when the ID is not an ISO volume of a dir storage.
   */
  volumePath(
    volume: string,
    node: string,
    storage?: string,
  ): { volid: string; file: string } | undefined {
    const m = /^(?:([a-zA-Z][\w.-]*):)?iso\/([^/]+)$/.exec(volume);
    const id = m?.[1] ?? storage;
    if (!m || id === undefined || !this.byId.has(id)) return undefined;
    const name = m[2] ?? '';
    if (name !== normalizeFilename(name) || !ISO_EXT.test(name)) return undefined;
    return { volid: `${id}:iso/${name}`, file: path.join(this.isoDir(id, node), name) };
  }

  /** The size of an existing ISO volume, or 500 `volume '…' does not exist`. */
  async volumeSize(volid: string, node: string): Promise<number> {
    const v = this.volumePath(volid, node);
    const st = v && (await statOrUndefined(v.file));
    if (!st?.isFile()) throw failure(`volume '${volid}' does not exist`);
    return st.size;
  }

  /** The synchronous checks of an ISO upload: content type, extension, storage kind. */
  checkUpload(id: string, content: string, filename: string): string {
    const s = this.get(id);
    const name = normalizeFilename(filename);
    if (content === 'iso' && !ISO_EXT.test(name))
      throw paramError({ filename: 'wrong file extension' });
    if (s.type !== 'dir') throw failure(`can't upload to storage type '${s.type}'`);
    if (!s.content.includes(content))
      throw failure(`storage '${id}' does not support '${content}' content`);
    if (content !== 'iso') throw failure(`the emulator stores only iso content, not '${content}'`);
    return name;
  }

  /** The copy into place at the end of the imgcopy task (overwrites, as Proxmox does). */
  async place(tmpFile: string, id: string, node: string, name: string): Promise<string> {
    const target = path.join(this.isoDir(id, node), name);
    await rename(tmpFile, target);
    return target;
  }

  /** Deletes a volume; false when it was not there (Proxmox only warns). */
  async remove(volid: string, node: string): Promise<boolean> {
    const v = this.volumePath(volid, node);
    if (!v) return false;
    const st = await statOrUndefined(v.file);
    if (!st) return false;
    await rm(v.file, { force: true });
    return true;
  }
}
