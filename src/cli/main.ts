#!/usr/bin/env node
/**
 * `diskless`: every step of the pipeline outside GitHub Actions, over the same library
 * and the same inputs as the actions. Logs go to stderr; the step's outputs go to
 * stdout as name=value lines (or one JSON object with --json) so they can be chained.
 */
import { realpathSync } from 'node:fs';
import { secretInputs } from '../inputs/read.js';
import { DisklessError, errorMessage, redact } from '../errors.js';
import { StepFailure, streamReporter, type StepReport } from '../report.js';
import { isStepName, steps, type Step } from '../steps.js';
import { runEmulatorCommand } from '../emulator/command.js';
import { runActionCommand } from './action-command.js';
import { envName, flagHelp, flagSource, parseFlags, switchHelp } from './flags.js';

const USAGE = `usage: diskless <command> [flags]

Steps (same inputs as the actions, as --flags or DISKLESS_<INPUT> variables):
${Object.values(steps)
  .map((s) => `  ${s.name.padEnd(14)}${s.title}`)
  .join('\n')}

Tools:
  action        run a bundled action the way the GitHub runner does
                (diskless action <name|dir> --input key=value ... [--json])
  emulator      serve a local ElasticStack cloud (drives, servers, image) for tests and dry runs
                (diskless emulator --port 0 --data DIR [--account USER:KEY] ...);
                --kind proxmox serves a Proxmox VE API (HTTPS, tokens, ISO upload, VMs)

Run "diskless <command> --help" for a command's flags.`;

function stepHelp(step: Step): string {
  return `usage: diskless ${step.name} [flags]\n\n${step.title}.\n\n${flagHelp(step.inputs.fields)}\n${switchHelp(['json', 'debug'])}`;
}

function printOutputs(report: StepReport, json: boolean): void {
  if (json) console.log(JSON.stringify(report.outputs, null, 2));
  else for (const [k, v] of Object.entries(report.outputs)) console.log(`${k}=${String(v)}`);
}

async function runStepCommand(step: Step, args: string[]): Promise<number> {
  const parsed = parseFlags(args, step.inputs.fields, ['json', 'debug', 'help']);
  if (parsed.switches.has('help')) {
    console.log(stepHelp(step));
    return 0;
  }
  const get = flagSource(parsed, step.inputs.fields, process.env);
  const secrets: string[] = [];
  for (const name of secretInputs(step.inputs)) {
    secrets.push(get(name) ?? '');
    if (parsed.raw.has(name)) {
      console.error(`warning: --${name} is visible to other users in ps; prefer ${envName(name)}`);
    }
  }
  const reporter = streamReporter((line) => {
    console.error(redact(line, secrets));
  }, parsed.switches.has('debug'));
  try {
    printOutputs(await step.start(get, reporter, process.env), parsed.switches.has('json'));
    return 0;
  } catch (error) {
    if (!(error instanceof DisklessError)) throw error;
    if (error instanceof StepFailure) printOutputs(error.report, parsed.switches.has('json'));
    console.error(`diskless ${step.name}: ${redact(errorMessage(error), secrets)}`);
    return 1;
  }
}

async function main(argv: string[]): Promise<number> {
  const [command, ...args] = argv;
  if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
    console.log(USAGE);
    return command === undefined ? 2 : 0;
  }
  if (command === 'action') return runActionCommand(args);
  if (command === 'emulator') return runEmulatorCommand(args);
  if (isStepName(command)) return runStepCommand(steps[command], args);
  console.error(`diskless: unknown command ${JSON.stringify(command)}\n\n${USAGE}`);
  return 2;
}

/** Runs the CLI on `argv` and sets the exit code (the bundle's dist/cli/index.js calls it). */
export function cli(argv: string[] = process.argv.slice(2)): void {
  main(argv).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      if (error instanceof DisklessError) console.error(`diskless: ${error.message}`);
      else console.error(error);
      process.exitCode = 1;
    },
  );
}

// Run as a script (tsx src/cli/main.ts); the bundle only imports this module.
if (process.argv[1] && realpathSync(process.argv[1]) === import.meta.filename) cli();
