// The `run:` steps of diskless-image.yml that decide things, run with bash and jq the way
// the runner runs them (env, GITHUB_OUTPUT, GITHUB_STEP_SUMMARY): the target check, the
// skip decision, a leg's result and the report that merges and records them.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseFileCommands } from '../../src/harness/file-commands.js';
import { releasesInUse } from '../../src/releases/in-use.js';
import { readLedger, recordUpload } from '../../src/releases/ledger.js';
import { start, type Started } from '../emulator/helpers.js';
import { tempDir } from '../helpers/temp.js';
import { bootDrive, bootServer, R1, R2, runRollout } from '../rollout/fleet.js';
import { renderValue, stepOf, workflow, type Job } from './workflows.js';

const { build, upload, report } = workflow('diskless-image.yml').doc.jobs as Record<
  'build' | 'upload' | 'report',
  Job
>;

let dir: string;
let s: Started | undefined;
beforeEach(async () => {
  dir = await tempDir('run-steps');
});
afterEach(async () => {
  await s?.stop();
  s = undefined;
  await rm(dir, { recursive: true, force: true });
});

interface Ran {
  status: number | null;
  stdout: string;
  stderr: string;
  outputs: Record<string, string>;
  summary: string;
}

/** Runs a step's script as the runner does for `shell: bash`, with `env` as its env. */
async function run(script: string | undefined, env: Record<string, string>): Promise<Ran> {
  const output = path.join(dir, 'output');
  const summary = path.join(dir, 'summary');
  await writeFile(output, '');
  await writeFile(summary, '');
  const file = path.join(dir, 'step.sh');
  await writeFile(file, script ?? '');
  const r = spawnSync('bash', ['--noprofile', '--norc', '-eo', 'pipefail', file], {
    cwd: dir,
    encoding: 'utf8',
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      GITHUB_OUTPUT: output,
      GITHUB_STEP_SUMMARY: summary,
      ...env,
    },
  });
  return {
    status: r.status,
    stdout: r.stdout,
    stderr: r.stderr,
    // GITHUB_OUTPUT as the runner reads it, with the harness's parser of its format.
    outputs: parseFileCommands(await readFile(output, 'utf8'), 'GITHUB_OUTPUT'),
    summary: await readFile(summary, 'utf8'),
  };
}

const LON = { name: 'lon-p', 'api-url': 'https://api-lon-p.example/', 'drive-name': 'boot' };
const SAT = { name: 'sat-p', 'api-url': 'https://api-sat-p.example/', 'drive-uuid': 'u-1' };
const PVE = {
  kind: 'proxmox',
  name: 'pve-lab',
  'api-url': 'https://pve1.example:8006',
  node: 'pve1',
  storage: 'cephfs',
};
const SHA = 'a'.repeat(64);
const RELEASE = '20250101T000000Z';
const NOW = '2025-01-01T00:00:00.000Z';

describe('the target check', () => {
  const plan = stepOf(build, { id: 'plan' }).run;

  it('selects every target, or the one named', async () => {
    const targets = JSON.stringify([LON, SAT]);
    const all = await run(plan, { TARGETS: targets, TARGET: '' });
    expect(all.status).toBe(0);
    expect(JSON.parse(all.outputs.selected ?? '')).toEqual([LON, SAT]);
    const one = await run(plan, { TARGETS: targets, TARGET: 'sat-p' });
    expect(JSON.parse(one.outputs.selected ?? '')).toEqual([SAT]);
  });

  it('takes a proxmox target beside an ElasticStack one', async () => {
    const targets = JSON.stringify([LON, { ...PVE, family: 'lab', 'restart-method': 'reboot' }]);
    const r = await run(plan, { TARGETS: targets, TARGET: '' });
    expect(r.status, r.stdout).toBe(0);
    expect(JSON.parse(r.outputs.selected ?? '')).toHaveLength(2);
  });

  it('refuses an unknown target name, listing the known ones', async () => {
    const r = await run(plan, { TARGETS: JSON.stringify([LON, SAT]), TARGET: 'fra-p' });
    expect(r.status).toBe(1);
    expect(r.stdout).toContain(
      '::error::no target is named "fra-p"; expected one of: lon-p, sat-p',
    );
  });

  it('refuses bad targets before anything is built, naming every problem', async () => {
    const bad = [
      { ...LON, name: 'a b', 'drive-uuid': 'x', zone: 'lon' },
      { ...SAT, 'api-url': 'ftp://x' },
      { ...SAT },
      3,
    ];
    const r = await run(plan, { TARGETS: JSON.stringify(bad), TARGET: '' });
    expect(r.status).toBe(1);
    const errors = r.stdout.split('\n').filter((l) => l.startsWith('::error::'));
    expect(errors).toEqual([
      '::error::every target must be an object',
      '::error::target "a b": name must be 1 to 40 of A-Z, a-z, 0-9, _ . -',
      '::error::target "a b": give exactly one of drive-name and drive-uuid',
      '::error::target "a b": unknown keys zone',
      '::error::target "sat-p": api-url must be an http(s) URL',
      '::error::duplicate target names: sat-p',
    ]);
    const pve = [
      { ...PVE, 'drive-name': 'boot' },
      { ...PVE, name: 'pve-2', 'api-url': 'http://pve2:8006', storage: '' },
      { ...PVE, name: 'pve-3', kind: 'vmware' },
    ];
    const p = await run(plan, { TARGETS: JSON.stringify(pve), TARGET: '' });
    expect(p.status).toBe(1);
    expect(p.stdout.split('\n').filter((l) => l.startsWith('::error::'))).toEqual([
      '::error::target "pve-lab": unknown keys drive-name',
      '::error::target "pve-2": a proxmox api-url must be https://',
      '::error::target "pve-2": a proxmox target needs node and storage',
      '::error::target "pve-3": kind must be elasticstack or proxmox',
      '::error::target "pve-3": give exactly one of drive-name and drive-uuid',
      '::error::target "pve-3": unknown keys node, storage',
    ]);
    for (const targets of ['[]', '{"name": "x"}', 'not json']) {
      const e = await run(plan, { TARGETS: targets, TARGET: '' });
      expect(e.status, targets).toBe(1);
      expect(e.stdout, targets).toMatch(
        /::error::targets (must be a non-empty JSON array|is not valid JSON)/,
      );
    }
  });
});

describe('the settings', () => {
  const read = stepOf(build, { id: 'settings' }).run;

  it("hands each settings file to build-rootfs's list input of the same name", async () => {
    const settings = path.join(dir, 'settings');
    await mkdir(settings);
    const varDirs = '# comment\nspool/rsyslog root:adm 0750\nlib/varnish varnish 0755';
    await writeFile(path.join(settings, 'var-dirs'), varDirs); // no final newline
    await writeFile(path.join(settings, 'template-values'), 'NAMESERVER=10.1.1.1\n');
    const r = await run(read, { SETTINGS_DIR: settings });
    expect(r.status).toBe(0);
    expect(r.outputs['var-dirs']?.trim()).toBe(varDirs);
    expect(r.outputs['template-values']?.trim()).toBe('NAMESERVER=10.1.1.1');
    expect(r.outputs).not.toHaveProperty('exclude');
    expect(r.stdout).toContain(`${settings}/var-dirs: 2 entries`);
    const rootfs = stepOf(build, { id: 'rootfs' });
    for (const name of ['var-dirs', 'template-values', 'exclude', 'mask-services']) {
      expect(rootfs.with?.[name]).toBe(`\${{ steps.settings.outputs.${name} }}`);
    }
  });
});

describe('naming the release and its ISO', () => {
  const step = stepOf(build, { id: 'release' }).run;

  it('names the release path and its kept ISO, and whether it is current already', async () => {
    const target = path.join(dir, 'rootfs');
    await mkdir(path.join(target, 'releases', RELEASE), { recursive: true });
    await symlink(`releases/${RELEASE}`, path.join(target, 'current'));
    const r = await run(step, { TARGET: target, RELEASE, ROLLBACK: 'false' });
    expect(r.status).toBe(0);
    expect(r.outputs).toMatchObject({
      release: RELEASE,
      root: `${target}/releases/${RELEASE}`,
      iso: `${target}/releases/${RELEASE}.iso`,
      'iso-file': `${RELEASE}.iso`,
      promote: 'false',
    });
    const other = await run(step, {
      TARGET: target,
      RELEASE: '20250102T000000Z',
      ROLLBACK: 'false',
    });
    expect(other.outputs.promote).toBe('true');
  });

  it('rolls back only to a release whose kept ISO matches its .sha256', async () => {
    const target = path.join(dir, 'rootfs');
    const iso = path.join(target, 'releases', `${RELEASE}.iso`);
    await mkdir(path.dirname(iso), { recursive: true });
    const missing = await run(step, { TARGET: target, RELEASE, ROLLBACK: 'true' });
    expect(missing.status).toBe(1);
    expect(missing.stdout).toContain(`::error::${iso}: no kept ISO with a matching .sha256`);
    await writeFile(iso, 'an iso');
    const digest = createHash('sha256').update('an iso').digest('hex');
    await writeFile(`${iso}.sha256`, `${'0'.repeat(64)}  ${RELEASE}.iso\n`);
    expect((await run(step, { TARGET: target, RELEASE, ROLLBACK: 'true' })).status).toBe(1);
    await writeFile(`${iso}.sha256`, `${digest}  ${RELEASE}.iso\n`);
    const ok = await run(step, { TARGET: target, RELEASE, ROLLBACK: 'true' });
    expect(ok.status).toBe(0);
    expect(ok.outputs.sha256).toBe(digest);
  });
});

describe('the targets decision', () => {
  const decide = stepOf(build, { id: 'decide' }).run;

  async function decideFor(o: { changed: boolean; force: boolean; last: Record<string, string> }) {
    // The ledger as the library writes it (retention reads the same files).
    const target = path.join(dir, 'rootfs');
    await mkdir(target, { recursive: true });
    for (const [name, sha] of Object.entries(o.last)) {
      await recordUpload(target, { target: name, release: RELEASE, sha256: sha, time: NOW });
    }
    const r = await run(decide, {
      SELECTED: JSON.stringify([LON, SAT]),
      CHANGED: String(o.changed),
      SHA256: SHA,
      FORCE: String(o.force),
      DRY_RUN: 'false',
      LEDGER: path.join(target, 'ledger'),
      RELEASE,
    });
    expect(r.status).toBe(0);
    return {
      targets: JSON.parse(r.outputs.matrix ?? '') as unknown[],
      summary: r.summary,
    };
  }

  it('gives every selected target a leg that asks its drive, whatever the ledger says', async () => {
    const d = await decideFor({
      changed: false,
      force: false,
      last: { 'lon-p': SHA, 'sat-p': SHA },
    });
    expect(d.targets).toEqual([LON, SAT]);
    expect(d.summary).toContain(
      '| lon-p | `' +
        SHA +
        '` | yes: it asks the drive (nothing is sent to a drive that holds this ISO) |',
    );
  });

  it('says so when forced, and shows a target the ledger does not know', async () => {
    const d = await decideFor({ changed: false, force: true, last: { 'lon-p': SHA } });
    expect(d.targets).toEqual([LON, SAT]);
    expect(d.summary).toContain(
      '| sat-p | `none` | yes, forced: every byte read back, what differs rewritten |',
    );
  });

  it('writes a standby drive for a drive-name target and exposes it for a rollout', () => {
    const send = stepOf(upload, { uses: './actions/upload-drive' });
    const mode = String(send.with?.mode);
    expect(renderValue(mode, { matrix: { target: { 'drive-name': 'boot' } } })).toBe('standby');
    expect(renderValue(mode, { matrix: { target: { 'drive-uuid': 'u-1' } } })).toBe('in-place');
    expect(String(send.with?.release)).toContain('needs.build.outputs.release');
    const outputs = (upload as { outputs?: Record<string, string> }).outputs ?? {};
    expect(outputs['drive-uuid']).toBe('${{ steps.upload.outputs.drive-uuid }}');
    expect(outputs['previous-drive']).toBe('${{ steps.upload.outputs.previous-drive }}');
  });

  it('a forced run reads every drive back in full', () => {
    const send = stepOf(upload, { uses: './actions/upload-drive' });
    expect(renderValue(String(send.with?.verify), { inputs: { force: true } })).toBe('full');
    expect(renderValue(String(send.with?.verify), { inputs: { force: false } })).toBe('sample');
  });
});

describe('the upload results', () => {
  const record = stepOf(upload, { name: 'Record the result' }).run;
  const merge = stepOf(report, { id: 'merge' }).run;

  async function leg(name: string, uuid: string, dryRun: boolean, results: string) {
    const r = await run(record, {
      NAME: name,
      KIND: 'elasticstack',
      DRIVE_UUID: uuid,
      DRIVE_NAME: `boot-${name}-0123abcd`,
      PREVIOUS_DRIVE: name === 'lon-p' ? 'uuid-lon-before' : '',
      MODE: 'standby',
      CREATED: 'true',
      UP_TO_DATE: 'false',
      BYTES_SENT: '1234',
      SHA256: SHA,
      DRY_RUN: String(dryRun),
      OUT: results,
    });
    expect(r.status).toBe(0);
  }

  it('merges the legs into drive-uuids and records what each real upload sent', async () => {
    const results = path.join(dir, 'results');
    const target = path.join(dir, 'rootfs');
    await leg('lon-p', 'uuid-lon', false, results);
    await leg('sat-p', 'uuid-sat', true, results);
    expect(JSON.parse(await readFile(path.join(results, 'lon-p.json'), 'utf8'))).toEqual({
      name: 'lon-p',
      kind: 'elasticstack',
      'drive-uuid': 'uuid-lon',
      iso: '',
      'drive-name': 'boot-lon-p-0123abcd',
      'previous-drive': 'uuid-lon-before',
      mode: 'standby',
      sha256: SHA,
      created: true,
      'up-to-date': false,
      'bytes-sent': 1234,
      'dry-run': false,
    });

    const r = await run(merge, {
      RESULTS: results,
      LEDGER: path.join(target, 'ledger'),
      SHA256: SHA,
      RELEASE,
      UPLOAD_RESULT: 'success',
      BOOT_TEST_RESULT: 'success',
      PROMOTE_RESULT: 'success',
      PREVIOUS: '20241231T000000Z',
      DRY_RUN: 'false',
    });
    expect(r.status).toBe(0);
    expect(JSON.parse(r.outputs['drive-uuids'] ?? '')).toEqual({
      'lon-p': 'uuid-lon',
      'sat-p': 'uuid-sat',
    });
    // For a rollout (or a rollback) per target: the live drive before this run.
    expect(JSON.parse(r.outputs['previous-drives'] ?? '')).toEqual({
      'lon-p': 'uuid-lon-before',
      'sat-p': '',
    });
    expect(JSON.parse(r.outputs.uploaded ?? '')).toEqual(['lon-p']);
    // The dry run records nothing: the next run still uploads to sat-p. The ledger the
    // step wrote is the one the library reads: retention keeps the release lon-p boots.
    expect(await readdir(path.join(target, 'ledger'))).toEqual(['lon-p.json']);
    const { entries, unreadable } = await readLedger(target);
    expect(unreadable).toEqual([]);
    expect(entries.map(({ time, ...rest }) => [rest, Number.isNaN(Date.parse(time))])).toEqual([
      [{ target: 'lon-p', release: RELEASE, sha256: SHA, drive: 'uuid-lon' }, false],
    ]);
    const inUse = await releasesInUse({
      target,
      current: undefined,
      mountTables: [],
      keepReleases: [],
    });
    expect(inUse.reasons.get(RELEASE)).toEqual(['ledger: lon-p']);
    expect(r.summary).toContain(
      `Release \`${RELEASE}\` is current now (was \`20241231T000000Z\`).`,
    );
    expect(r.summary).toContain(
      '| lon-p | boot-lon-p-0123abcd `uuid-lon` | `uuid-lon-before` | true | false | 1234 | false |',
    );
  });

  it("records a proxmox leg's ISO volume id where a drive UUID stands, in the outputs and the ledger", async () => {
    const results = path.join(dir, 'results');
    const target = path.join(dir, 'rootfs');
    const iso = path.join(dir, 'r.iso');
    await writeFile(iso, Buffer.alloc(4096));
    const r = await run(record, {
      NAME: 'pve-lab',
      KIND: 'proxmox',
      ISO_FILE: iso,
      VOLID: 'cephfs:iso/diskless-0123abcd.iso',
      PVE_FILE: 'diskless-0123abcd.iso',
      PVE_SENT: 'true',
      PVE_SHA256: SHA,
      DRY_RUN: 'false',
      OUT: results,
    });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(await readFile(path.join(results, 'pve-lab.json'), 'utf8'))).toEqual({
      name: 'pve-lab',
      kind: 'proxmox',
      'drive-uuid': '',
      iso: 'cephfs:iso/diskless-0123abcd.iso',
      'drive-name': 'diskless-0123abcd.iso',
      'previous-drive': '',
      mode: 'blue-green',
      sha256: SHA,
      created: true,
      'up-to-date': false,
      'bytes-sent': 4096,
      'dry-run': false,
    });
    const m = await run(merge, {
      RESULTS: results,
      LEDGER: path.join(target, 'ledger'),
      SHA256: SHA,
      RELEASE,
      UPLOAD_RESULT: 'success',
      BOOT_TEST_RESULT: 'success',
      PROMOTE_RESULT: 'success',
      DRY_RUN: 'false',
    });
    expect(m.status, m.stdout + m.stderr).toBe(0);
    expect(JSON.parse(m.outputs['drive-uuids'] ?? '')).toEqual({
      'pve-lab': 'cephfs:iso/diskless-0123abcd.iso',
    });
    const { entries } = await readLedger(target);
    expect(entries.map((e) => [e.target, e.release, e.drive])).toEqual([
      ['pve-lab', RELEASE, 'cephfs:iso/diskless-0123abcd.iso'],
    ]);
    expect(m.summary).toContain(
      '| pve-lab | diskless-0123abcd.iso `cephfs:iso/diskless-0123abcd.iso` | `none` | true | false | 4096 | false |',
    );
  });

  it('reports no upload when every target was up to date, and fails after a failed leg', async () => {
    const empty = path.join(dir, 'none');
    const skipped = await run(merge, {
      RESULTS: empty,
      LEDGER: path.join(dir, 'ledger'),
      SHA256: SHA,
      RELEASE: 'r',
      UPLOAD_RESULT: 'skipped',
      BOOT_TEST_RESULT: 'success',
      PROMOTE_RESULT: 'success',
    });
    expect(skipped.status).toBe(0);
    expect(skipped.outputs['drive-uuids']).toBe('{}');
    expect(skipped.outputs.uploaded).toBe('[]');
    expect(skipped.summary).toContain('No drive was written');

    const failed = await run(merge, {
      RESULTS: empty,
      LEDGER: path.join(dir, 'ledger'),
      SHA256: SHA,
      RELEASE: 'r',
      UPLOAD_RESULT: 'failure',
      BOOT_TEST_RESULT: 'success',
      PROMOTE_RESULT: 'skipped',
    });
    expect(failed.status).toBe(1);
    expect(failed.stdout).toContain('::error::at least one upload leg did not finish');
    expect(failed.summary).toContain('Current is unchanged');

    const bootFailed = await run(merge, {
      RESULTS: empty,
      LEDGER: path.join(dir, 'ledger'),
      SHA256: SHA,
      RELEASE: 'r',
      UPLOAD_RESULT: 'skipped',
      BOOT_TEST_RESULT: 'failure',
      PROMOTE_RESULT: 'skipped',
    });
    expect(bootFailed.status).toBe(1);
    expect(bootFailed.summary).toContain(
      'nothing was uploaded and current and every drive are as they were',
    );
  });
});

describe('the rollout results', () => {
  const { rollout } = workflow('diskless-image.yml').doc.jobs as Record<'rollout', Job>;
  const plan = stepOf(rollout, { id: 'plan' }).run;
  const record = stepOf(rollout, { name: 'Record the rollout' }).run;
  const merge = stepOf(report, { id: 'merge' }).run;

  it('plans from the upload leg: its drive, the mode and the servers, one per line', async () => {
    const result = path.join(dir, 'lon-p.json');
    const uuid = '0f2c4d8e-1b3a-4c5d-9e8f-a1b2c3d4e5f6';
    await writeFile(result, JSON.stringify({ name: 'lon-p', 'drive-uuid': uuid }));
    const target = { ...LON, servers: ['web1', 'tag:canary'], rollout: 'none' };
    const r = await run(plan, {
      RESULT: result,
      TARGET: JSON.stringify(target),
      ROLLOUT: 'rolling',
    });
    expect(r.status, r.stderr).toBe(0);
    expect(r.outputs).toEqual({
      drive: uuid,
      iso: '',
      mode: 'none',
      restart: 'none',
      servers: 'web1\ntag:canary',
    });
    const byDefault = await run(plan, {
      RESULT: result,
      TARGET: JSON.stringify(LON),
      ROLLOUT: 'rolling',
    });
    expect(byDefault.outputs).toMatchObject({ mode: 'rolling', restart: 'rolling', servers: '' });
    await writeFile(result, JSON.stringify({ name: 'lon-p', 'drive-uuid': '' }));
    const none = await run(plan, {
      RESULT: result,
      TARGET: JSON.stringify(LON),
      ROLLOUT: 'rolling',
    });
    expect(none.status).toBe(1);
    expect(none.stdout).toContain('no drive UUID from the upload leg');
  });

  it('plans a proxmox target from the ISO volume id its leg wrote', async () => {
    const result = path.join(dir, 'pve-lab.json');
    const volid = 'cephfs:iso/diskless-0123abcd.iso';
    await writeFile(result, JSON.stringify({ name: 'pve-lab', kind: 'proxmox', iso: volid }));
    const r = await run(plan, {
      RESULT: result,
      TARGET: JSON.stringify({ ...PVE, servers: ['pool:lab', '101'] }),
      ROLLOUT: 'rolling',
    });
    expect(r.status, r.stderr).toBe(0);
    expect(r.outputs).toEqual({
      drive: '',
      iso: volid,
      mode: 'rolling',
      restart: 'rolling',
      servers: 'pool:lab\n101',
    });
    await writeFile(result, JSON.stringify({ name: 'pve-lab', kind: 'proxmox', iso: '' }));
    const none = await run(plan, {
      RESULT: result,
      TARGET: JSON.stringify(PVE),
      ROLLOUT: 'rolling',
    });
    expect(none.status).toBe(1);
    expect(none.stdout).toContain('no ISO volume id from the upload leg');
  });

  it("records the rollout's ledger entry on the master, where retention reads it, and shows who runs what", async () => {
    s = await start();
    const e = s.emulator;
    const d1 = await bootDrive(e, 'aaaaaaaa', R1);
    const d2 = await bootDrive(e, 'bbbbbbbb', R2);
    await bootServer(e, { name: 'web1', cd: d1, ip: '127.0.0.51' });
    const rolled = await runRollout(e, {
      drive: d2,
      restart: 'none',
      'ledger-name': 'lon-p',
    });
    expect(rolled.error).toBeUndefined();
    const out = path.join(dir, 'rollouts');
    const o = rolled.outputs;
    const rec = await run(record, {
      NAME: 'lon-p',
      OUTCOME: 'success',
      UPDATED: o['servers-updated'],
      RESTARTED: o['servers-restarted'],
      FAILED: o['failed-server'],
      PREVIOUS: o['previous-drive'],
      FLEET: o.fleet,
      LEDGER_ENTRY: o.ledger,
      OUT: out,
    });
    expect(rec.status, rec.stderr).toBe(0);
    const target = path.join(dir, 'rootfs');
    const r = await run(merge, {
      RESULTS: path.join(dir, 'none'),
      ROLLOUTS: out,
      LEDGER: path.join(target, 'ledger'),
      SHA256: SHA,
      RELEASE: R2,
      UPLOAD_RESULT: 'success',
      BOOT_TEST_RESULT: 'success',
      PROMOTE_RESULT: 'success',
      ROLLOUT_RESULT: 'success',
    });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.summary).toMatch(
      new RegExp(
        `\\| lon-p \\| success \\| web1 \\| runs ${R1} \\(drive boot-cd-aaaaaaaa, .*\\) until its next boot, then ${R2} `,
      ),
    );
    const inUse = await releasesInUse({
      target,
      current: undefined,
      mountTables: [],
      keepReleases: [],
    });
    expect(inUse.problems).toEqual([]);
    expect(inUse.reasons.get(R2)).toEqual(['ledger: lon-p']);
    expect(inUse.reasons.get(R1)?.[0]).toMatch(
      /^ledger: lon-p: drive [0-9a-f]{8} runs on web1; previous drive/,
    );

    const failed = await run(merge, {
      RESULTS: path.join(dir, 'none'),
      LEDGER: path.join(target, 'ledger'),
      SHA256: SHA,
      RELEASE: R2,
      UPLOAD_RESULT: 'success',
      BOOT_TEST_RESULT: 'success',
      PROMOTE_RESULT: 'success',
      ROLLOUT_RESULT: 'failure',
    });
    expect(failed.status).toBe(1);
    expect(failed.stdout).toContain('::error::a rollout stopped');
  });
});
