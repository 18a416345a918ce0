/**
 * build-rootfs's phases after the copy, which turn the master's copy into a client root:
 * scrub (the client's own identity), overlay (the template and fstab), var (the tmpfs /var
 * skeleton), services (masked and enabled units) and scan (no secrets clients could read).
 * Each writes through the ClientTree, so a versioned build never changes a file it shares
 * with the previous release.
 */
import path from 'node:path';
import { withoutShippedFiles } from '../secrets/packaged.js';
import {
  assertNoSecrets,
  scanSecrets,
  type ScanResult,
  type SecretHit,
} from '../secrets/scan-tree.js';
import { writeAccounts } from './accounts.js';
import { BOOT_KEYS_UNIT, installBootHostKeys } from './boot-host-keys.js';
import type { Run } from './check.js';
import { FSTAB } from './fstab.js';
import { applyTemplate } from './overlay.js';
import { CLIENT_KEY_PATHS, scrub, type ScrubResult } from './scrub.js';
import { configureServices, type ServicesResult } from './services.js';
import type { ClientTree } from './tree.js';
import { POPULATE_UNIT, POPULATE_UNIT_TEXT, SKELETON, type Skeleton } from './var-skeleton.js';

/** The release id inside the root, for the client (and its operator) to read. */
const RELEASE_FILE = 'etc/diskless/release';
/** agetty shows /etc/issue.d/*.issue at the console login prompt. */
const ISSUE_FILE = 'etc/issue.d/diskless-release.issue';

/** scrub: the master's identity goes; the client's accounts (and boot-time host keys). */
export async function scrubIdentity(
  run: Run,
  tree: ClientTree,
  sshKeyDir: string | undefined,
): Promise<ScrubResult> {
  const { options, reporter } = run;
  const keys = await reporter.group("Scrub the master's identity", () =>
    scrub(tree, { clientSshKeys: options.clientSshKeys, keyDir: sshKeyDir }, reporter),
  );
  await writeAccounts(tree, run.accounts);
  if (options.hostKeysAtBoot) await installBootHostKeys(tree);
  return keys;
}

/** overlay: the template, the release id files and the generated fstab. */
export async function overlay(run: Run, tree: ClientTree, id: string): Promise<void> {
  const { options, reporter, fstab } = run;
  await reporter.group('Overlay the template', async () => {
    const n = await applyTemplate(tree, run.template);
    await tree.writeFile(RELEASE_FILE, `${id}\n`, { mode: 0o644, mtime: new Date(0) });
    await tree.writeFile(ISSUE_FILE, `diskless release ${id}\n\n`, {
      mode: 0o644,
      mtime: new Date(0),
    });
    reporter.info(
      options.template
        ? `Laid ${n} file(s) of ${options.template} over the root`
        : 'No template given',
    );
    if (fstab !== undefined) {
      await tree.writeFile(FSTAB, fstab, { mode: 0o644, mtime: new Date(0) });
      reporter.info('Wrote a generated /etc/fstab (tmpfs /var and /tmp, NFS /usr)');
    }
  });
}

/** var: an empty /var, its skeleton archive and the unit that unpacks it at boot. */
export async function prepareVar(run: Run, tree: ClientTree, skeleton: Skeleton): Promise<void> {
  const { reporter } = run;
  await reporter.group('Prepare the tmpfs /var', async () => {
    await tree.directory('var', 0o755); // the copy left it empty
    await tree.writeFile(SKELETON, skeleton.tar, { mode: 0o644, mtime: new Date(0) });
    await tree.writeFile(`etc/systemd/system/${POPULATE_UNIT}`, POPULATE_UNIT_TEXT, {
      mode: 0o644,
      mtime: new Date(0),
    });
    reporter.info(
      `/var is empty; /${SKELETON} holds ${skeleton.entries.length} directories and links for it`,
    );
  });
}

/** services: server-only units masked, the client's units enabled. */
export function services(run: Run, tree: ClientTree): Promise<ServicesResult> {
  const { options, reporter } = run;
  return reporter.group('Mask server-only services', () =>
    configureServices(
      tree,
      {
        source: run.source,
        copyUsr: options.copyUsr,
        mask: options.maskServices,
        enable: [
          POPULATE_UNIT,
          ...(options.hostKeysAtBoot ? [BOOT_KEYS_UNIT] : []),
          ...options.enableServices,
        ],
      },
      reporter,
    ),
  );
}

/**
 * scan: no private keys or credentials in the client root (nor in what clients mount from
 * the master: `mounted`, found beside the build). `previousRoot`: only what differs from it
 * is read.
 */
export function scanClientRoot(
  run: Run,
  o: {
    root: string;
    previousRoot: string | undefined;
    keys: ScrubResult;
    mounted: readonly SecretHit[];
  },
): Promise<ScanResult> {
  const { options, reporter, publisher } = run;
  return reporter.group('Scan for secrets', async () => {
    const result = await scanSecrets({
      root: o.root,
      previous: o.previousRoot,
      allow: options.secretAllow,
      accepted: o.keys.sshKeys ? CLIENT_KEY_PATHS : [],
      skip: publisher.toolFiles,
    });
    // A file a Debian package shipped unchanged is public (library self-test keys).
    const hits = await withoutShippedFiles(result.hits, run.source, (h) => ({
      file: path.join(o.root, h.path),
      rel: h.path.slice(1),
    }));
    reporter.info(`Read ${result.read} of ${result.files} file(s); ${hits.length} hit(s)`);
    assertNoSecrets([...o.mounted, ...hits]);
    return result;
  });
}
