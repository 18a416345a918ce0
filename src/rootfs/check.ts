/**
 * build-rootfs's check phase: every refusal, before anything is touched. What it reads
 * (paths, exclusions, the rendered template, the fstab, the client's accounts) is fixed for
 * the rest of the build, so it becomes the run's context.
 */
import os from 'node:os';
import path from 'node:path';
import type { Env } from '../env.js';
import { DisklessError, inputError } from '../errors.js';
import type { Reporter } from '../report.js';
import { clientAccounts } from './accounts.js';
import { exclusions } from './exclusions.js';
import { checkFstab, FSTAB, generateFstab } from './fstab.js';
import { checkPaths, type Marker } from './guard.js';
import type { BuildRootfsOptions } from './options.js';
import { loadTemplate, type TemplateEntry, type TemplateValues } from './overlay.js';
import { publisherFor, type Publisher } from './publisher.js';

/** One build: its options and the inputs the check read, fixed from then on. */
export interface Run {
  options: BuildRootfsOptions;
  reporter: Reporter;
  /** The build's start (Date.now()). */
  started: number;
  source: string;
  target: string;
  /** The target's marker as the check found it (read again under the lock). */
  marker: Marker | undefined;
  publisher: Publisher;
  excludes: string[];
  template: TemplateEntry[];
  /** The generated fstab; undefined when the template brings its own. */
  fstab: string | undefined;
  accounts: Awaited<ReturnType<typeof clientAccounts>>;
}

function templateValues(o: BuildRootfsOptions, nfsRoot: string, usrExport: string): TemplateValues {
  const values: TemplateValues = {
    NFS_SERVER: { value: o.nfsServer, input: 'nfs-server' },
    NFS_ROOT: { value: nfsRoot, input: 'target' },
    USR_ROOT: { value: usrExport, input: 'source' },
    CLIENT_HOSTNAME: { value: o.clientHostname, input: 'client-hostname' },
    MASTER_HOSTNAME: { value: os.hostname(), input: 'the master' },
  };
  for (const line of o.templateValues) {
    const eq = line.indexOf('=');
    const name = line.slice(0, eq);
    if (Object.hasOwn(values, name) && values[name]?.input !== 'template-values') {
      throw inputError(
        'template-values',
        line,
        `a name other than the built-in {{${name}}} (set it through input "${values[name]?.input ?? ''}")`,
      );
    }
    values[name] = { value: line.slice(eq + 1), input: 'template-values' };
  }
  return values;
}

/** The template's fstab is checked; without one, the generated fstab (returned). */
function clientFstab(
  options: BuildRootfsOptions,
  template: readonly TemplateEntry[],
  source: string,
  usrExport: string,
): string | undefined {
  const templateFstab = template.find((e) => e.rel === FSTAB);
  if (templateFstab?.kind === 'file') {
    checkFstab(templateFstab.data.toString('utf8'), {
      copyUsr: options.copyUsr,
      shareHome: options.shareHome,
      from: templateFstab.from,
    });
    return undefined;
  } else if (templateFstab) {
    throw new DisklessError(`template: ${FSTAB} must be a file; expected the client's fstab`);
  }
  return generateFstab({
    ...options,
    usrExport,
    homeExport: path.join(source, 'home'),
  });
}

/** The check phase: refusals first, then the run's fixed inputs (`env`: the caller's). */
export async function check(
  options: BuildRootfsOptions,
  reporter: Reporter,
  started: number,
  env: Env,
): Promise<Run> {
  const layout = options.layout;
  const checked = await reporter.group('Check the source, target and template', async () => {
    const c = await checkPaths({
      source: options.source,
      target: options.target,
      template: options.template,
      layout,
    });
    reporter.info(`source ${c.source}, target ${c.target} (${layout}${c.marker ? '' : ', new'})`);
    return c;
  });
  const { source, target } = checked;
  const publisher = publisherFor(target, options, reporter, env);
  const excludes = exclusions({
    source,
    target,
    stateDir: options.stateDir,
    copyUsr: options.copyUsr,
    extra: options.exclude,
    env,
  });
  const usrExport = path.join(source, 'usr');
  const values = templateValues(options, publisher.nfsRoot, usrExport);
  const template = options.template ? await loadTemplate(options.template, values) : [];
  const fstab = clientFstab(options, template, source, usrExport);
  const accounts = await clientAccounts(source, options);
  if (publisher.warning) reporter.warning(publisher.warning);
  return {
    options,
    reporter,
    started,
    source,
    target,
    marker: checked.marker,
    publisher,
    excludes,
    template,
    fstab,
    accounts,
  };
}
