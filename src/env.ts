/**
 * The environment a step runs in. The library never reads process.env: its callers (the
 * action entry in actions/common/run-step.ts, the CLI, a test) pass the environment in
 * once and the step hands it down, so the decisions it drives (who ran a promotion,
 * SOURCE_DATE_EPOCH, the cache and state directories, where programs are found) come
 * from what the caller gave. A lint rule keeps process.env out of src/ (eslint.config.js).
 */
export type Env = Readonly<Record<string, string | undefined>>;
