// The workflows, parsed: GitHub's own parser (@actions/workflow-parser) for the schema and
// the reusable-workflow call, then the contract with the actions, the job graph, the
// artifact hand-over, the pins, timeouts, permissions and concurrency.
import path from 'node:path';
import {
  NoOperationTraceWriter,
  convertWorkflowTemplate,
  parseWorkflow,
} from '@actions/workflow-parser';
import { describe, expect, it } from 'vitest';
import type { ActionDefinition } from '../../src/harness/action-yml.js';
import {
  REPO,
  type Job,
  type InputSpec,
  expand,
  globMatch,
  inputProblems,
  loadWorkflow,
  localActions,
  needsOf,
  references,
  stepOf,
  workflow,
  workflowFiles,
  evaluateIf,
  renderValue,
} from './workflows.js';

const IMAGE = 'diskless-image.yml';
const REBUILD = 'rebuild.yml';

/** Parses and converts a workflow the way GitHub does; local reusable workflows are fetched. */
async function githubParse(rel: string, content: string) {
  const parsed = parseWorkflow({ name: rel, content }, new NoOperationTraceWriter());
  const parseErrors = parsed.context.errors.getErrors().map((e) => e.message);
  if (!parsed.value) return { parseErrors, errors: [], template: undefined };
  const template = await convertWorkflowTemplate(
    parsed.context,
    parsed.value,
    {
      getFileContent: (ref) => {
        if (!('path' in ref)) throw new Error(`not a local workflow: ${JSON.stringify(ref)}`);
        const called = loadWorkflow(path.join(REPO, ref.path));
        return Promise.resolve({ name: called.rel, content: called.text });
      },
    },
    { fetchReusableWorkflowDepth: 1 },
  );
  return { parseErrors, errors: (template.errors ?? []).map((e) => e.Message), template };
}

describe("GitHub's workflow parser", () => {
  it.each(workflowFiles().map((f) => [path.basename(f), f]))(
    'accepts %s with no error',
    async (_name, file) => {
      const w = loadWorkflow(file);
      const { parseErrors, errors } = await githubParse(w.rel, w.text);
      expect(parseErrors).toEqual([]);
      expect(errors).toEqual([]);
    },
  );

  it('rejects a call that passes an input the reusable workflow does not declare', async () => {
    const w = workflow(REBUILD);
    const bad = w.text.replace('client-hostname: diskless', 'client-hostnme: diskless');
    expect(bad).not.toBe(w.text);
    const { errors } = await githubParse(w.rel, bad);
    expect(errors.join('\n')).toMatch(/client-hostnme is not defined in the referenced workflow/);
  });

  it('sees the three triggers of rebuild.yml and the reusable job graph', async () => {
    const w = workflow(REBUILD);
    const { template } = await githubParse(w.rel, w.text);
    expect(Object.keys(template?.events ?? {}).sort()).toEqual([
      'push',
      'schedule',
      'workflow_dispatch',
    ]);
    const [call] = template?.jobs ?? [];
    expect(call?.type).toBe('reusableWorkflowJob');
    const called = call?.type === 'reusableWorkflowJob' ? (call.jobs ?? []) : [];
    expect(called.map((j) => [j.id.value, (j.needs ?? []).map((n) => n.value).sort()])).toEqual([
      ['build', []],
      ['boot-test', ['build']],
      ['upload', ['boot-test', 'build']],
      ['promote', ['boot-test', 'build', 'upload']],
      ['rollout', ['boot-test', 'build', 'promote', 'upload']],
      ['report', ['boot-test', 'build', 'promote', 'rollout', 'upload']],
    ]);
  });
});

describe('rebuild.yml (the template repository role)', () => {
  const { doc } = workflow(REBUILD);
  const on = doc.on as {
    push: { branches: string[]; paths: string[] };
    schedule: { cron: string }[];
    workflow_dispatch: { inputs: Record<string, InputSpec> };
  };

  it('rebuilds on a push to the default branch that touches the overlay or the settings', () => {
    expect(on.push.branches).toEqual(['main']);
    expect(on.push.paths).toEqual(
      expect.arrayContaining([
        'template/**',
        'settings/**',
        '.github/workflows/rebuild.yml',
        `.github/workflows/${IMAGE}`,
      ]),
    );
  });

  it("rebuilds nightly, after Debian's apt-daily-upgrade window (06:00 plus up to an hour)", () => {
    expect(on.schedule).toHaveLength(1);
    const fields = (on.schedule[0]?.cron ?? '').split(/\s+/);
    expect(fields).toHaveLength(5);
    // minute and hour fixed, every day of the month, every month, every day of the week
    expect(fields.slice(0, 2).every((f) => /^\d+$/.test(f))).toBe(true);
    expect(fields.slice(2)).toEqual(['*', '*', '*']);
    const minutes = Number(fields[1]) * 60 + Number(fields[0]);
    expect(minutes).toBeGreaterThanOrEqual(7 * 60);
    expect(minutes).toBeLessThan(24 * 60);
  });

  it('runs the master jobs only from the default branch (or its schedule)', () => {
    const [call] = Object.values(doc.jobs);
    const build = workflow(IMAGE).doc.jobs.build;
    const runs = (job: Job | undefined, github: object) =>
      evaluateIf(job?.if ?? '', {
        inputs: {},
        needs: {},
        cancelled: false,
        success: true,
        vars: { DISKLESS_ENABLED: 'true' },
        github: { repository: 'o/r', event: { repository: { default_branch: 'main' } }, ...github },
      });
    for (const job of [call, build]) {
      expect(runs(job, { event_name: 'push', ref_name: 'main' })).toBe(true);
      expect(runs(job, { event_name: 'schedule', ref_name: 'main', event: {} })).toBe(true);
      expect(runs(job, { event_name: 'workflow_dispatch', ref_name: 'main' })).toBe(true);
      expect(runs(job, { event_name: 'workflow_dispatch', ref_name: 'unreviewed' })).toBe(false);
      expect(runs(job, { event_name: 'push', ref_name: 'unreviewed' })).toBe(false);
    }
  });

  it('runs on demand with force, dry-run and target inputs', () => {
    const inputs = on.workflow_dispatch.inputs;
    expect(inputs.force).toMatchObject({ type: 'boolean', default: false });
    expect(inputs['dry-run']).toMatchObject({ type: 'boolean', default: false });
    expect(inputs.target).toMatchObject({ type: 'string', default: '' });
  });

  it('calls diskless-image.yml with every required input, and only on demand forced or dry', () => {
    const image = workflow(IMAGE).doc.on.workflow_call as { inputs: Record<string, InputSpec> };
    const jobs = Object.values(doc.jobs);
    expect(jobs).toHaveLength(1);
    const call = jobs[0] as Job;
    expect(call.uses).toBe(`./.github/workflows/${IMAGE}`);
    const given = Object.keys(call.with ?? {});
    for (const [name, spec] of Object.entries(image.inputs)) {
      if (spec.required) expect(given, `required input ${name}`).toContain(name);
    }
    for (const name of given) expect(Object.keys(image.inputs)).toContain(name);
    for (const name of ['force', 'dry-run', 'target']) {
      expect(String(call.with?.[name])).toContain("github.event_name == 'workflow_dispatch'");
      expect(String(call.with?.[name])).toContain(`inputs.${name}`);
    }
    // Off until the repository says otherwise (a fresh copy has no master yet).
    const onMain = (vars: object) =>
      evaluateIf(call.if ?? '', {
        inputs: {},
        needs: {},
        cancelled: false,
        success: true,
        vars,
        github: {
          event_name: 'push',
          ref_name: 'main',
          event: { repository: { default_branch: 'main' } },
        },
      });
    expect(onMain({})).toBe(false);
    expect(onMain({ DISKLESS_ENABLED: 'true' })).toBe(true);
  });

  it('never runs two rebuilds at once and never cancels a running one', () => {
    expect(doc.concurrency).toEqual({ group: 'diskless-rebuild', 'cancel-in-progress': false });
  });
});

describe('diskless-image.yml (the reusable pipeline)', () => {
  const { doc } = workflow(IMAGE);
  const call = doc.on.workflow_call as {
    inputs: Record<string, InputSpec>;
    secrets: Record<string, { required?: boolean }>;
    outputs: Record<string, { value: string }>;
  };
  const {
    build,
    'boot-test': bootTest,
    upload,
    promote,
    rollout,
    report,
  } = doc.jobs as Record<'build' | 'boot-test' | 'upload' | 'promote' | 'rollout' | 'report', Job>;

  it('is only a reusable workflow, with typed inputs and secrets', () => {
    expect(Object.keys(doc.on)).toEqual(['workflow_call']);
    for (const [name, spec] of Object.entries(call.inputs)) {
      expect(['string', 'boolean', 'number'], `type of input ${name}`).toContain(spec.type);
      expect(spec.description, `description of input ${name}`).toBeTruthy();
      if (spec.default !== undefined) {
        expect(typeof spec.default, `default of ${name}`).toBe(
          spec.type === 'number' ? 'number' : spec.type === 'boolean' ? 'boolean' : 'string',
        );
      }
    }
    expect(Object.keys(call.secrets).sort()).toEqual([
      'ELASTICSTACK_API_KEY',
      'ELASTICSTACK_API_USER',
      'PROXMOX_TOKEN_ID',
      'PROXMOX_TOKEN_SECRET',
    ]);
  });

  it('has the job graph build -> boot-test -> upload (matrix) -> promote -> rollout (matrix) -> report', () => {
    expect(Object.keys(doc.jobs)).toEqual([
      'build',
      'boot-test',
      'upload',
      'promote',
      'rollout',
      'report',
    ]);
    expect(needsOf(rollout).sort()).toEqual(['boot-test', 'build', 'promote', 'upload']);
    expect(rollout.strategy).toEqual(upload.strategy);
    expect(needsOf(build)).toEqual([]);
    expect(needsOf(bootTest)).toEqual(['build']);
    expect(needsOf(upload).sort()).toEqual(['boot-test', 'build']);
    expect(needsOf(promote).sort()).toEqual(['boot-test', 'build', 'upload']);
    expect(needsOf(report).sort()).toEqual(['boot-test', 'build', 'promote', 'rollout', 'upload']);
    expect(upload.strategy).toEqual({
      'fail-fast': false,
      matrix: { target: '${{ fromJSON(needs.build.outputs.matrix) }}' },
    });
    // The report runs after skipped or failed legs too, but not without a build.
    expect(report.if).toBe("always() && needs.build.result == 'success'");
  });

  describe('gates the upload on the boot test', () => {
    type Result = 'success' | 'failure' | 'cancelled' | 'skipped';
    const when = (
      job: Job,
      o: {
        bootTest: boolean;
        matrix?: string;
        boot?: Result;
        cancelled?: boolean;
        promote?: 'true' | 'false';
        upload?: Result;
        dryRun?: boolean;
        rollbackTo?: string;
      },
    ): boolean =>
      evaluateIf(job.if ?? '', {
        inputs: {
          'boot-test': o.bootTest,
          'dry-run': o.dryRun ?? false,
          'rollback-to': o.rollbackTo ?? '',
        },
        needs: {
          build: {
            result: 'success',
            outputs: { matrix: o.matrix ?? '[{"name":"a"}]', promote: o.promote ?? 'true' },
          },
          'boot-test': { result: o.boot ?? 'skipped' },
          upload: { result: o.upload ?? 'success' },
        },
        cancelled: o.cancelled ?? false,
        // success(): every job in the chain of needs succeeded (the build does here).
        success: o.boot === undefined || o.boot === 'success',
      });

    it('boots on the master, the ISO as handed over, against the new release', () => {
      expect(bootTest['runs-on']).toBe('${{ fromJSON(inputs.runs-on) }}');
      expect(call.inputs['boot-test']?.default).toBe(true);
      expect(when(bootTest, { bootTest: true })).toBe(true);
      expect(when(bootTest, { bootTest: false })).toBe(false);
      // The release is current already: it passed its boot test when it was promoted.
      expect(when(bootTest, { bootTest: true, promote: 'false' })).toBe(false);
      // A rollback goes to a release that was live before: no boot.
      expect(when(bootTest, { bootTest: true, rollbackTo: 'previous' })).toBe(false);
      const order = (bootTest.steps ?? []).map((s) => s.uses?.replace(/@.*/, ''));
      expect(order).toEqual([
        'actions/checkout',
        'actions/download-artifact',
        './actions/boot-test',
      ]);
      const fetch = stepOf(bootTest, { uses: 'actions/download-artifact' });
      expect(fetch.with?.name).toBe('${{ needs.build.outputs.artifact }}');
      const boot = stepOf(bootTest, { uses: './actions/boot-test' });
      expect(boot.with?.iso).toBe(
        `${String(fetch.with?.path)}/\${{ needs.build.outputs.iso-file }}`,
      );
      expect(boot.with?.root).toBe('${{ needs.build.outputs.root }}');
      expect(build.outputs?.root).toBe('${{ steps.release.outputs.root }}');
    });

    it('uploads after a passing boot test, or when the test is turned off', () => {
      expect(when(upload, { bootTest: true, boot: 'success' })).toBe(true);
      expect(when(upload, { bootTest: false, boot: 'skipped' })).toBe(true);
    });

    it('never uploads after a failed, cancelled or missing boot test, or with nothing to send', () => {
      expect(when(upload, { bootTest: true, boot: 'failure' })).toBe(false);
      expect(when(upload, { bootTest: true, boot: 'cancelled' })).toBe(false);
      // Turned on but skipped: its build said there was nothing to upload.
      expect(when(upload, { bootTest: true, boot: 'skipped' })).toBe(false);
      expect(when(upload, { bootTest: false, boot: 'skipped', matrix: '[]' })).toBe(false);
      expect(when(upload, { bootTest: true, boot: 'success', cancelled: true })).toBe(false);
    });

    it('uploads a rollback, or the release current already, without a boot test', () => {
      expect(when(upload, { bootTest: true, boot: 'skipped', rollbackTo: 'previous' })).toBe(true);
      expect(when(upload, { bootTest: true, boot: 'skipped', promote: 'false' })).toBe(true);
    });

    it('promotes only after a passing boot test and every upload, never in a dry run', () => {
      expect(when(promote, { bootTest: true, boot: 'success', upload: 'success' })).toBe(true);
      // No upload leg (no target selected), but the release is not current yet.
      expect(when(promote, { bootTest: true, boot: 'success', upload: 'skipped' })).toBe(true);
      expect(when(promote, { bootTest: true, boot: 'failure', upload: 'skipped' })).toBe(false);
      expect(when(promote, { bootTest: true, boot: 'cancelled', upload: 'skipped' })).toBe(false);
      expect(when(promote, { bootTest: true, boot: 'skipped', upload: 'skipped' })).toBe(false);
      expect(when(promote, { bootTest: true, boot: 'success', upload: 'failure' })).toBe(false);
      expect(when(promote, { bootTest: true, boot: 'success', dryRun: true })).toBe(false);
      expect(when(promote, { bootTest: true, boot: 'success', promote: 'false' })).toBe(false);
      expect(when(promote, { bootTest: false, boot: 'skipped' })).toBe(true);
      expect(
        when(promote, { bootTest: true, boot: 'skipped', rollbackTo: '20261129T120000Z' }),
      ).toBe(true);
      expect(
        when(promote, { bootTest: true, boot: 'skipped', rollbackTo: 'previous', dryRun: true }),
      ).toBe(false);
      const step = stepOf(promote, { uses: './actions/promote' });
      expect(step.with).toEqual({
        target: '${{ inputs.rootfs-target }}',
        release: '${{ needs.build.outputs.release }}',
      });
      expect(promote['runs-on']).toBe('${{ fromJSON(inputs.runs-on) }}');
      expect(promote.concurrency).toEqual(build.concurrency);
    });

    it('rolls out per target after the uploads and the promotion, never after a failed boot test or in a dry run', () => {
      const rolls = (o: Parameters<typeof when>[1] & { promoted?: Result }) =>
        evaluateIf(rollout.if ?? '', {
          inputs: { 'boot-test': o.bootTest, 'dry-run': o.dryRun ?? false, 'rollback-to': '' },
          needs: {
            build: {
              result: 'success',
              outputs: { matrix: o.matrix ?? '[{"name":"a"}]', promote: o.promote ?? 'true' },
            },
            'boot-test': { result: o.boot ?? 'skipped' },
            upload: { result: o.upload ?? 'success' },
            promote: { result: o.promoted ?? 'success' },
          },
          cancelled: o.cancelled ?? false,
          success: false,
        });
      expect(rolls({ bootTest: true, boot: 'success' })).toBe(true);
      // the release is current already (no promotion needed): its new drives still roll out
      expect(
        rolls({ bootTest: true, boot: 'skipped', promote: 'false', promoted: 'skipped' }),
      ).toBe(true);
      // a failed boot test uploads nothing, so nothing rolls out
      expect(
        rolls({ bootTest: true, boot: 'failure', upload: 'skipped', promoted: 'skipped' }),
      ).toBe(false);
      expect(
        rolls({ bootTest: true, boot: 'success', upload: 'failure', promoted: 'skipped' }),
      ).toBe(false);
      expect(rolls({ bootTest: true, boot: 'success', promoted: 'failure' })).toBe(false);
      expect(rolls({ bootTest: true, boot: 'success', promoted: 'skipped' })).toBe(false);
      expect(rolls({ bootTest: true, boot: 'success', dryRun: true, promoted: 'skipped' })).toBe(
        false,
      );
      expect(rolls({ bootTest: true, boot: 'success', cancelled: true })).toBe(false);
      const step = stepOf(rollout, { uses: './actions/rollout' });
      expect(step.with).toMatchObject({
        drive: '${{ steps.plan.outputs.drive }}',
        restart: '${{ steps.plan.outputs.restart }}',
        'ledger-name': '${{ matrix.target.name }}',
        'api-key': "${{ matrix.target.kind != 'proxmox' && secrets.ELASTICSTACK_API_KEY || '' }}",
      });
      const fetch = stepOf(rollout, { uses: 'actions/download-artifact' });
      const leg = stepOf(upload, { name: 'Hand the result over' });
      expect(fetch.with?.name).toBe(leg.with?.name);
      expect(rollout.concurrency?.['cancel-in-progress']).toBe(false);
    });

    it("gives build-iso the release's own path as NFS root, or current when asked", () => {
      const iso = stepOf(build, { uses: './actions/build-iso' });
      const contexts = (isoRoot: string) => ({
        inputs: { 'nfs-server': '10.0.0.1', 'rootfs-target': '/srv/diskless', 'iso-root': isoRoot },
        steps: { release: { outputs: { root: '/srv/diskless/releases/20261129T120000Z' } } },
      });
      expect(call.inputs['iso-root']?.default).toBe('release');
      expect(renderValue(String(iso.with?.['nfs-root']), contexts('release'))).toBe(
        '10.0.0.1:/srv/diskless/releases/20261129T120000Z',
      );
      expect(renderValue(String(iso.with?.['nfs-root']), contexts('current'))).toBe(
        '10.0.0.1:/srv/diskless/current',
      );
    });

    it('makes nothing current before the boot test: the build only stages', () => {
      const rootfs = stepOf(build, { uses: './actions/build-rootfs' });
      expect(rootfs.with?.publish).toBe(false);
      // The only promote that changes anything is the promote job's; the build's is a dry run.
      const promotes: string[] = [];
      for (const [jobId, job] of Object.entries(doc.jobs)) {
        for (const step of job.steps ?? []) {
          if (step.uses !== './actions/promote') continue;
          promotes.push(`${jobId}:${JSON.stringify(step.with?.['dry-run'] ?? false)}`);
        }
      }
      expect(promotes.sort()).toEqual(['build:true', 'promote:false']);
    });
  });

  it('builds on the self-hosted master given by labels, in the workflow order', () => {
    expect(build['runs-on']).toBe('${{ fromJSON(inputs.runs-on) }}');
    expect(report['runs-on']).toBe('${{ fromJSON(inputs.runs-on) }}');
    expect(String(call.inputs['runs-on']?.default)).toContain('self-hosted');
    const order = (build.steps ?? []).map((s) => s.uses?.replace(/@.*/, '') ?? s.id);
    expect(order).toEqual([
      'plan',
      'actions/checkout',
      'settings',
      undefined, // the check of iso-root and rollback-to
      './actions/build-rootfs',
      './actions/promote',
      'release',
      './actions/build-iso',
      'decide',
      'actions/upload-artifact',
    ]);
    const iso = stepOf(build, { uses: './actions/build-iso' });
    expect(iso.with?.root).toBe('${{ steps.release.outputs.root }}');
    expect(iso.with?.output).toBe('${{ steps.release.outputs.iso }}');
    expect(iso.with?.cache).toBe('local');
    expect(iso.with?.['cache-dir']).toBe('${{ inputs.cache-dir }}');
    expect(String(call.inputs['cache-dir']?.default)).toMatch(/^\//);
  });

  it('passes each local action only inputs its action.yml declares, and all it requires', async () => {
    const actions = await localActions();
    const problems: string[] = [];
    let steps = 0;
    for (const file of workflowFiles()) {
      for (const job of Object.values(loadWorkflow(file).doc.jobs)) {
        for (const step of job.steps ?? []) {
          if (!step.uses?.startsWith('./actions/')) continue;
          steps++;
          const action = actions.get(step.uses);
          if (!action) problems.push(`${step.uses}: no action.yml`);
          else problems.push(...inputProblems(step, action));
        }
      }
    }
    expect(problems).toEqual([]);
    expect(steps).toBe(8);
  });

  it('finds an undeclared or missing input (the check above can fail)', async () => {
    const action = (await localActions()).get('./actions/upload-drive') as ActionDefinition;
    const leg = stepOf(upload, { uses: './actions/upload-drive' });
    const { 'api-key': _key, ...rest } = leg.with ?? {};
    expect(inputProblems({ ...leg, with: { ...rest, 'drive-nam': 'x' } }, action)).toEqual([
      './actions/upload-drive: input "drive-nam" is not declared in its action.yml',
      './actions/upload-drive: required input "api-key" is missing',
    ]);
  });

  it('reads only outputs the actions and jobs declare', async () => {
    const actions = await localActions();
    const problems: string[] = [];
    for (const [jobId, job] of Object.entries(doc.jobs)) {
      const ids = new Map((job.steps ?? []).filter((s) => s.id).map((s) => [s.id, s]));
      for (const [stepId, output] of references(job, 'steps', 'outputs')) {
        const step = ids.get(stepId);
        if (!step) {
          problems.push(`${jobId}: no step ${stepId}`);
          continue;
        }
        const action = step.uses ? actions.get(step.uses) : undefined;
        if (action && !Object.hasOwn(action.outputs, output)) {
          problems.push(`${jobId}: ${step.uses ?? ''} has no output ${output}`);
        }
      }
      for (const [needed, output] of references(job, 'needs', 'outputs')) {
        if (!needsOf(job).includes(needed)) problems.push(`${jobId}: needs.${needed} not needed`);
        if (!Object.hasOwn(doc.jobs[needed]?.outputs ?? {}, output)) {
          problems.push(`${jobId}: job ${needed} has no output ${output}`);
        }
      }
    }
    for (const [jobId, output] of references(call.outputs, 'jobs', 'outputs')) {
      if (!Object.hasOwn(doc.jobs[jobId]?.outputs ?? {}, output)) {
        problems.push(`workflow output: job ${jobId} has no output ${output}`);
      }
    }
    expect(problems).toEqual([]);
    expect(Object.keys(call.outputs).sort()).toEqual(
      [
        'changed',
        'drive-uuids',
        'previous-drives',
        'iso-sha256',
        'promoted',
        'release',
        'uploaded',
      ].sort(),
    );
  });

  it('hands the ISO and its .sha256 over as one artifact, and the upload reads it from there', () => {
    const iso = stepOf(build, { uses: './actions/build-iso' });
    const handOver = stepOf(build, { uses: 'actions/upload-artifact' });
    const fetch = stepOf(upload, { uses: 'actions/download-artifact' });
    const send = stepOf(upload, { uses: './actions/upload-drive' });

    // Same name on both sides: the build's output is the name it uploaded under.
    const values = {
      'inputs.artifact-name': 'diskless-iso',
      'needs.build.outputs.artifact': expand(build.outputs?.artifact ?? '', {
        'inputs.artifact-name': 'diskless-iso',
      }),
      'needs.build.outputs.iso-file': '20261129T120000Z.iso',
      'runner.temp': '/runner/temp',
      'steps.release.outputs.iso': '/srv/diskless/releases/20261129T120000Z.iso',
    };
    expect(iso.with?.output).toBe('${{ steps.release.outputs.iso }}');
    expect(expand(String(handOver.with?.name), values)).toBe('diskless-iso');
    expect(expand(String(fetch.with?.name), values)).toBe('diskless-iso');

    // The ISO and the checksum file build-iso writes beside it, nothing else.
    const paths = String(handOver.with?.path)
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean)
      .map((l) => expand(l, values));
    // Kept beside its release on the master (a rollback re-uploads it without a rebuild).
    expect(paths).toEqual([
      '/srv/diskless/releases/20261129T120000Z.iso',
      '/srv/diskless/releases/20261129T120000Z.iso.sha256',
    ]);
    expect(handOver.with?.['if-no-files-found']).toBe('error');
    expect(handOver.if).toBe("steps.decide.outputs.matrix != '[]'");

    // upload-artifact drops the common directory: the files land in the download path.
    const image = expand(String(send.with?.image), values);
    expect(image).toBe(
      path.join(expand(String(fetch.with?.path), values), path.basename(paths[0] ?? '')),
    );
    const check = stepOf(upload, { name: "Check the ISO against the build's SHA-256" });
    expect(expand(String(check.env?.ISO), values)).toBe(image);
    expect(check.env?.EXPECTED).toBe('${{ needs.build.outputs.sha256 }}');
    const order = (upload.steps ?? []).map((s) => s.uses?.replace(/@.*/, '') ?? s.name);
    expect(order.indexOf('actions/download-artifact')).toBeLessThan(order.indexOf(check.name));
    expect(order.indexOf(check.name)).toBeLessThan(order.indexOf('./actions/upload-drive'));
  });

  it('collects every leg result into the report job', () => {
    const legOut = stepOf(upload, { name: 'Hand the result over' });
    const collect = stepOf(report, { name: 'Fetch the upload results' });
    const values = {
      'needs.build.outputs.artifact': 'diskless-iso',
      'matrix.target.name': 'lon-p',
    };
    expect(globMatch(expand(String(collect.with?.pattern), values), 'diskless-iso')).toBe(false);
    expect(
      globMatch(
        expand(String(collect.with?.pattern), values),
        expand(String(legOut.with?.name), values),
      ),
    ).toBe(true);
    expect(collect.with?.['merge-multiple']).toBe(true);
    expect(report.outputs?.['drive-uuids']).toBe('${{ steps.merge.outputs.drive-uuids }}');
  });

  it('skips an up-to-date upload only when nothing changed and the target has this ISO', () => {
    const decide = stepOf(build, { id: 'decide' });
    expect(decide.env).toMatchObject({
      CHANGED: "${{ steps.rootfs.outputs.changed || 'false' }}",
      SHA256: '${{ steps.iso.outputs.sha256 || steps.release.outputs.sha256 }}',
      FORCE: '${{ inputs.force }}',
    });
    const send = stepOf(upload, { uses: './actions/upload-drive' });
    expect(send.with?.['dry-run']).toBe('${{ inputs.dry-run }}');
  });

  it('gives the API secrets to the upload step only, from a GitHub environment', () => {
    expect(upload.environment).toBe('${{ matrix.target.environment || inputs.environment }}');
    for (const [jobId, job] of Object.entries(doc.jobs)) {
      for (const step of job.steps ?? []) {
        const used = JSON.stringify(step).match(/secrets\.[A-Z_]+/g) ?? [];
        for (const secret of used) {
          expect(Object.keys(call.secrets)).toContain(secret.slice('secrets.'.length));
        }
        if (used.length > 0) {
          expect(['upload', 'rollout'], `secrets in ${step.name ?? step.uses ?? ''}`).toContain(
            jobId,
          );
          expect([
            './actions/upload-drive',
            './actions/upload-pve',
            './actions/rollout',
            undefined, // the check that the environment has them
          ]).toContain(step.uses);
        }
      }
    }
    expect(rollout.environment).toBe(upload.environment);
    expect(workflow(REBUILD).doc.jobs.image?.secrets).toBe('inherit');
  });

  it('runs upload-drive or upload-pve by the target kind, and gives each kind only its own credentials', () => {
    const stepsIf = (job: Job, target: object) =>
      (job.steps ?? [])
        .filter(
          (st) =>
            st.if === undefined ||
            evaluateIf(st.if, {
              inputs: {},
              needs: {},
              matrix: { target },
              cancelled: false,
              success: true,
            }),
        )
        .map((st) => st.uses?.replace(/@.*/, '') ?? st.name);
    const es = { name: 'lon-p', 'api-url': 'https://api.example/', 'drive-name': 'boot' };
    const pveTarget = {
      kind: 'proxmox',
      name: 'lab',
      'api-url': 'https://pve1:8006',
      node: 'pve1',
      storage: 'cephfs',
      'tls-fingerprint': 'AB'.repeat(32),
    };
    const esSteps = stepsIf(upload, es);
    expect(esSteps).toContain('./actions/upload-drive');
    expect(esSteps).toContain('Check the API credentials');
    expect(esSteps).not.toContain('./actions/upload-pve');
    expect(esSteps).not.toContain('Check the Proxmox token');
    const pveSteps = stepsIf(upload, pveTarget);
    expect(pveSteps).toContain('./actions/upload-pve');
    expect(pveSteps).toContain('Check the Proxmox token');
    expect(pveSteps).not.toContain('./actions/upload-drive');
    expect(pveSteps).not.toContain('Check the API credentials');
    // Both legs record their result and hand it to the rollout.
    expect(pveSteps).toContain('Record the result');

    const secrets = {
      ELASTICSTACK_API_USER: 'es-user',
      ELASTICSTACK_API_KEY: 'es-key',
      PROXMOX_TOKEN_ID: 'ci@pve!diskless',
      PROXMOX_TOKEN_SECRET: 'pve-secret',
    };
    const render = (job: Job, uses: string, target: object, plan: object = {}) =>
      Object.fromEntries(
        Object.entries(stepOf(job, { uses }).with ?? {})
          .map(([k, v]): [string, string] => [
            k,
            renderValue(String(v), {
              matrix: { target },
              secrets,
              steps: { plan: { outputs: plan } },
              inputs: { 'dry-run': false },
              needs: { build: { outputs: { 'iso-file': 'r.iso' } } },
              runner: { temp: '/tmp' },
            }),
          ])
          .filter(([, v]) => v !== ''),
      );
    const send = render(upload, './actions/upload-pve', pveTarget);
    expect(send).toMatchObject({
      'api-url': 'https://pve1:8006',
      'token-id': 'ci@pve!diskless',
      'token-secret': 'pve-secret',
      node: 'pve1',
      storage: 'cephfs',
      family: 'diskless',
      'tls-fingerprint': 'AB'.repeat(32),
      'keep-previous': '1',
      image: '/tmp/diskless-iso/r.iso',
    });
    const volid = 'cephfs:iso/diskless-0123abcd.iso';
    const pveRoll = render(rollout, './actions/rollout', pveTarget, { iso: volid, drive: '' });
    expect(pveRoll).toMatchObject({
      kind: 'proxmox',
      'token-id': 'ci@pve!diskless',
      'token-secret': 'pve-secret',
      node: 'pve1',
      iso: volid,
    });
    for (const k of ['api-user', 'api-key', 'drive']) expect(pveRoll[k]).toBeUndefined();
    const uuid = '0f2c4d8e-1b3a-4c5d-9e8f-a1b2c3d4e5f6';
    const esRoll = render(rollout, './actions/rollout', es, { drive: uuid, iso: '' });
    expect(esRoll).toMatchObject({
      kind: 'elasticstack',
      'api-user': 'es-user',
      'api-key': 'es-key',
      drive: uuid,
    });
    for (const k of ['token-id', 'token-secret', 'node', 'iso']) expect(esRoll[k]).toBeUndefined();
    // Uploads to one storage, or rollouts of one family, never overlap.
    const group = (job: Job, target: object) =>
      renderValue(job.concurrency?.group ?? '', { matrix: { target } });
    expect(group(upload, pveTarget)).toBe('diskless-upload-https://pve1:8006-cephfs');
    expect(group(rollout, es)).toBe('diskless-rollout-https://api.example/-boot');
  });

  it('never cancels a running build or upload, and never shares a group with its caller', () => {
    expect(build.concurrency?.['cancel-in-progress']).toBe(false);
    expect(upload.concurrency?.['cancel-in-progress']).toBe(false);
    expect(upload.concurrency?.group).toContain('matrix.target.');
    const caller = workflow(REBUILD).doc.concurrency?.group;
    for (const job of Object.values(doc.jobs)) {
      if (job.concurrency) expect(job.concurrency.group).not.toBe(caller);
    }
    expect(doc.concurrency).toBeUndefined();
  });
});

describe('every workflow', () => {
  const all = workflowFiles().map(loadWorkflow);

  it('pins every third-party action to a full commit SHA with its version in a comment', () => {
    const problems: string[] = [];
    let pinned = 0;
    for (const w of all) {
      for (const [i, line] of w.text.split('\n').entries()) {
        const m = /^\s*(?:-\s+)?uses:\s*(\S+)(.*)$/.exec(line);
        if (!m) continue;
        const [, ref = '', rest = ''] = m;
        if (ref.startsWith('./')) continue;
        pinned++;
        if (!/^[\w.-]+\/[\w.-]+(?:\/[\w./-]+)?@[0-9a-f]{40}$/.test(ref)) {
          problems.push(`${w.rel}:${i + 1}: ${ref} is not pinned to a full commit SHA`);
        }
        if (!/^\s+#\s*v\d+\.\d+\.\d+\s*$/.test(rest)) {
          problems.push(`${w.rel}:${i + 1}: ${ref} has no "# vX.Y.Z" comment`);
        }
      }
    }
    expect(problems).toEqual([]);
    expect(pinned).toBeGreaterThanOrEqual(7);
  });

  it('pins each action to one SHA everywhere', () => {
    const shas = new Map<string, Set<string>>();
    for (const w of all) {
      for (const m of w.text.matchAll(/uses:\s*([\w.-]+\/[\w.-]+)@(\S+)\s*#\s*(\S+)/g)) {
        const key = m[1] ?? '';
        shas.set(key, (shas.get(key) ?? new Set()).add(`${m[2] ?? ''} ${m[3] ?? ''}`));
      }
    }
    for (const [action, refs] of shas) expect([...refs], action).toHaveLength(1);
  });

  it('gives every job with steps a timeout', () => {
    for (const w of all) {
      for (const [id, job] of Object.entries(w.doc.jobs)) {
        if (job.uses) continue; // a reusable-workflow call takes no timeout; its jobs do
        const t = job['timeout-minutes'];
        expect(t, `${w.rel} job ${id}`).toBeTypeOf('number');
        expect(t, `${w.rel} job ${id}`).toBeGreaterThan(0);
        expect(t, `${w.rel} job ${id}`).toBeLessThanOrEqual(180);
      }
    }
  });

  it('grants least permissions: nothing at the top of the new workflows, read-only contents at most', () => {
    for (const w of all) {
      const scopes = [w.doc.permissions, ...Object.values(w.doc.jobs).map((j) => j.permissions)];
      for (const p of scopes) {
        if (p === undefined) continue;
        expect(typeof p, w.rel).toBe('object');
        for (const [scope, level] of Object.entries(p as Record<string, string>)) {
          expect(`${scope}: ${level}`, w.rel).toBe('contents: read');
        }
      }
    }
    for (const name of [IMAGE, REBUILD]) {
      const { doc } = workflow(name);
      expect(doc.permissions, name).toEqual({});
      for (const [id, job] of Object.entries(doc.jobs)) {
        expect(job.permissions, `${name} job ${id}`).toBeDefined();
      }
    }
    expect(workflow(IMAGE).doc.jobs.report?.permissions).toEqual({});
  });

  it('checks out without leaving the token behind', () => {
    for (const w of all) {
      for (const job of Object.values(w.doc.jobs)) {
        for (const step of job.steps ?? []) {
          if (step.uses?.startsWith('actions/checkout@')) {
            expect(step.with?.['persist-credentials'], w.rel).toBe(false);
          }
        }
      }
    }
  });
});

describe('ci.yml and the self-hosted master', () => {
  it("runs only on GitHub-hosted runners, and no workflow gives a fork's pull request the master", () => {
    const ci = workflow('ci.yml');
    for (const [id, job] of Object.entries(ci.doc.jobs)) {
      const runsOn = JSON.stringify(job['runs-on'] ?? '');
      expect(runsOn, `ci.yml job ${id}`).toMatch(/^"ubuntu-[\d.]+"$/);
      expect(job.uses, `ci.yml job ${id}`).toBeUndefined();
    }
    for (const file of workflowFiles()) {
      const w = loadWorkflow(file);
      expect(Object.keys(w.doc.on), w.rel).not.toContain('pull_request_target');
      if (Object.hasOwn(w.doc.on, 'pull_request')) {
        // A workflow a pull request starts uses no self-hosted runner and no other workflow.
        for (const job of Object.values(w.doc.jobs)) {
          expect(JSON.stringify(job['runs-on'] ?? ''), w.rel).not.toMatch(/self-hosted|inputs\./);
          expect(job.uses, w.rel).toBeUndefined();
        }
      }
    }
  });
});
