import { readFile } from 'node:fs/promises';
import { defineConfig, type Plugin } from 'vitest/config';

// @actions/workflow-parser (test/workflows) imports its JSON schema without an import
// attribute, which Node refuses, so Vite loads it (server.deps.inline below). Its source
// maps name files the package does not ship: load it without them instead of a warning a file.
const WORKFLOW_PARSER = /\/node_modules\/@actions\/workflow-parser\/dist\/.*\.js$/;
const workflowParserWithoutMaps: Plugin = {
  name: 'workflow-parser-without-source-maps',
  enforce: 'pre',
  async load(id) {
    if (!WORKFLOW_PARSER.test(id)) return null;
    const code = await readFile(id, 'utf8');
    return { code: code.replace(/^\/\/# sourceMappingURL=.*$/m, ''), map: null };
  },
};

export default defineConfig({
  plugins: [workflowParserWithoutMaps],
  test: {
    include: ['test/**/*.test.ts'],
    // Contract tests spawn bundled actions as child processes; give them room on 2 cores.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    server: { deps: { inline: ['@actions/workflow-parser'] } },
  },
});
