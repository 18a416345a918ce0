/**
 * What a build-rootfs run did (its result, typed) and the step's report made from it:
 * the outputs and the summary rows. A build that changed nothing and one that made a new
 * release share the shape; the summary tells them apart.
 */
import { humanBytes } from '../report.js';
import type { BuildRootfsReport } from './options.js';
import type { ServicesResult } from './services.js';

export interface BuildRootfsResult {
  /** The release's root (in place: the target itself). */
  root: string;
  /** The release id, and its files and bytes. */
  release: string;
  files: number;
  bytes: number;
  /** A new release was made; false: nothing changed since `release`. */
  changed: boolean;
  /** The release is current now. */
  published: boolean;
  /** The release the new one follows (a new release only). */
  previous: string | undefined;
  /** Nothing changed, and the existing release was made current by this run. */
  promoted: boolean;
  /** A new release that was staged: the release still current. */
  current: string | undefined;
  /** A new release: the units masked and enabled in it. */
  services: ServicesResult | undefined;
  /** What the publisher reports after the build (retention: what it removed and kept). */
  retention: [string, string][];
  /** The whole build, in seconds (one decimal). */
  seconds: number;
}

/** The step's outputs and summary. */
export function reportBuildRootfs(r: BuildRootfsResult): BuildRootfsReport {
  const note = r.changed
    ? r.previous
      ? ` (previous ${r.previous})`
      : ''
    : ` (unchanged: nothing new${r.promoted ? '; made current' : ''})`;
  const built: [string, string][] = r.services
    ? [
        ['Masked', r.services.masked.join(', ') || 'none'],
        ['Enabled', r.services.enabled.join(', ') || 'none'],
        [
          'Current',
          r.published ? 'this release' : `${r.current ?? 'none'} (staged, not published)`,
        ],
      ]
    : [];
  return {
    outputs: {
      root: r.root,
      release: r.release,
      changed: r.changed,
      published: r.published,
      files: r.files,
      bytes: r.bytes,
      duration: r.seconds,
    },
    summary: [
      ['Client root', r.root],
      ['Release', `${r.release}${note}`],
      ['Files', `${r.files} (${humanBytes(r.bytes)})`],
      ...built,
      ...r.retention,
      ['Duration', `${r.seconds} s`],
    ],
  };
}
