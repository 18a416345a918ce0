/** Inputs of promote (action.yml and `diskless promote` flags). */
import { bool, filePath, text } from '../inputs/fields.js';
import { defineInputs, type Options } from '../inputs/read.js';
import { RELEASE_ID } from './layout.js';
import { defineOutputs, type ReportOf } from '../inputs/outputs.js';

export const promoteInputs = defineInputs(
  {
    target: filePath({ absolute: true, required: true }),
    release: text({
      required: true,
      pattern: new RegExp(`^(?:previous|${RELEASE_ID.source.slice(1, -1)})$`),
      expected: 'a release id such as 20261129T120000Z, or previous',
    }),
    'dry-run': bool({ default: 'false' }),
  },
  undefined,
  {
    target: "Absolute base directory of the client roots (build-rootfs's target).",
    release:
      "The release to make current: its id (build-rootfs's release output), or previous for the release that was current before the current one (a rollback).",
    'dry-run': 'Resolve and check the release and report what would change; change nothing.',
  },
);

export type PromoteOptions = Options<typeof promoteInputs.fields>;

/** What promote hands on (action.yml's outputs say the same; a test checks). */
export const promoteOutputs = defineOutputs({
  release: {
    type: 'string',
    description: 'Id of the release that is current now (with dry-run, the one that would be).',
  },
  previous: {
    type: 'string',
    description: 'Id of the release that was current before this step (empty when none was).',
  },
  changed: { type: 'boolean', description: 'true when current moved.' },
});

export type PromoteReport = ReportOf<typeof promoteOutputs>;
