/**
 * upload-pve: ships the ISO to a Proxmox VE storage as a new blue/green artifact and,
 * when asked, prunes the family's old files that no VM references. Phases: connect
 * (the client and its trust), upload, prune; the result (UploadPveResult) then makes the
 * report. Pointing the VMs at the new file is the rollout's job.
 */
import type { Reporter } from '../report.js';
import { PveApi } from './api.js';
import type { UploadPveOptions, UploadPveReport } from './options.js';
import { pruneFamily, type PruneResult } from './retention.js';
import { uploadIsoImage, type PveUploadResult } from './upload.js';

function connect(o: UploadPveOptions): PveApi {
  return new PveApi({
    url: o.apiUrl,
    tokenId: o.tokenId,
    secret: o.tokenSecret,
    tls: { caFile: o.tlsCaFile, fingerprint: o.tlsFingerprint, insecure: o.tlsInsecure },
  });
}

/** What the step did: the step's result, which reportUploadPve turns into its report. */
export interface UploadPveResult {
  /** Where the image went. */
  target: { apiUrl: string; node: string; storage: string };
  upload: PveUploadResult;
  /** The prune's result, when the step pruned. */
  pruned: PruneResult | undefined;
}

/** The step's outputs and summary. */
export function reportUploadPve({ target, upload: r, pruned }: UploadPveResult): UploadPveReport {
  const send = r.phases.send ?? 0;
  const state =
    r.dryRun && !r.sent ? 'dry run: nothing sent' : r.sent ? 'uploaded' : 'already there';
  return {
    outputs: {
      volid: r.volid,
      filename: r.filename,
      sha256: r.sha256,
      sent: r.sent,
      attempts: r.attempts,
      deleted: (pruned?.deleted ?? []).join(' '),
      'send-seconds': send.toFixed(2),
      throughput: send > 0 && r.sent ? (r.size / send / 1e6).toFixed(1) : '-',
    },
    summary: [
      ['Target', `${target.apiUrl} node ${target.node}, storage ${target.storage}`],
      ['Artifact', r.volid],
      ['Result', `${state}${r.attempts > 1 ? ` after ${r.attempts} attempts` : ''}`],
      ['Image', `${r.size} bytes, sha256 ${r.sha256} (verified by Proxmox)`],
      ...(pruned
        ? ([
            ['Deleted', pruned.deleted.join(', ') || 'none'],
            ['Kept', pruned.kept.join(', ') || 'none'],
          ] as [string, string][])
        : []),
    ],
  };
}

export async function uploadPve(o: UploadPveOptions, reporter: Reporter): Promise<UploadPveResult> {
  const api = connect(o);
  if (o.tlsInsecure)
    reporter.warning(`tls-insecure: the certificate of ${o.apiUrl} is not checked`);
  try {
    const r = await uploadIsoImage(
      api,
      { image: o.image, family: o.family, node: o.node, storage: o.storage, dryRun: o.dryRun },
      reporter,
    );
    const pruned = o.prune
      ? await reporter.group('Prune old images', () =>
          pruneFamily(
            api,
            {
              node: o.node,
              storage: o.storage,
              family: o.family,
              current: r.volid,
              keepPrevious: o.keepPrevious,
              dryRun: o.dryRun,
            },
            reporter,
          ),
        )
      : undefined;
    return { target: { apiUrl: o.apiUrl, node: o.node, storage: o.storage }, upload: r, pruned };
  } finally {
    await api.close();
  }
}
