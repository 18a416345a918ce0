// action.yml, the typed input and output schemas and the README tables must say the same thing.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readActionYml } from '../../src/harness/action-yml.js';
import { steps } from '../../src/steps.js';
import { actionNames, renderReadme, root } from '../../scripts/readme-tables.js';

describe('action definitions', async () => {
  const names = await actionNames();

  it('are exactly the pipeline steps', () => {
    expect(names).toEqual(Object.keys(steps).sort());
  });

  describe.each(names)('%s', async (name) => {
    const action = await readActionYml(path.join(root, 'actions', name));
    const step = steps[name as keyof typeof steps];

    it('runs its committed bundle on node24', () => {
      expect(action.runs.using).toBe('node24');
      expect(action.runs.main).toBe('dist/index.js');
      expect(existsSync(path.join(action.dir, action.runs.main))).toBe(true);
    });

    it('describes every input and output', () => {
      expect(action.description).not.toBe('');
      for (const [input, spec] of Object.entries(action.inputs)) {
        expect(spec.description, input).not.toBe('');
      }
      expect(Object.keys(action.outputs).length).toBeGreaterThan(0);
      for (const [output, spec] of Object.entries(action.outputs)) {
        expect(spec.description, output).not.toBe('');
      }
    });

    it('declares the same inputs, required flags and defaults as the typed schema', () => {
      const declared = Object.entries(action.inputs).map(([n, i]) => [n, i.required, i.default]);
      const typed = Object.entries(step.inputs.fields).map(([n, f]) => [n, f.required, f.default]);
      expect(declared).toEqual(typed);
    });

    it('describes its inputs as the typed schema does', () => {
      const declared = Object.entries(action.inputs).map(([n, i]) => [n, i.description]);
      const typed = Object.entries(step.inputs.fields).map(([n, f]) => [n, f.description]);
      expect(declared).toEqual(typed);
    });

    it('declares the same outputs, with the same descriptions, as the typed schema', () => {
      const declared = Object.entries(action.outputs).map(([n, o]) => [n, o.description]);
      const typed = Object.entries(step.outputs).map(([n, o]) => [n, o.description]);
      expect(declared).toEqual(typed);
    });
  });
});

describe('README', () => {
  it('has every action table as action.yml renders it (npm run docs)', async () => {
    const readme = await readFile(path.join(root, 'README.md'), 'utf8');
    expect(await renderReadme(readme)).toBe(readme);
  });
});
