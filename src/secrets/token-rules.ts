/**
 * Tokens and credentials (cloud keys, GitHub and Slack tokens, passwords in URLs, ...) by
 * secretlint's recommended rule set, maintained upstream, instead of a private regex list.
 *
 * One secretlint call costs far more than its regexes on a small file, so the text of
 * many files is linted together, about a MiB at a time, and each report is mapped back
 * to the file its range falls in. Binary content is linted as its printable strings.
 * Only the rule's id is kept: secretlint's messages quote the secret.
 */
import { lintSource } from '@secretlint/core';
import { creator as recommended } from '@secretlint/secretlint-rule-preset-recommend';

const CONFIG = {
  rules: [{ id: '@secretlint/secretlint-rule-preset-recommend', rule: recommended }],
};
const BATCH = 1 << 20;
/** Files are joined with a blank line, so no rule spans two of them. */
const SEPARATOR = '\n\n';
/** Printable runs of binary content this long can hold a token. */
const MIN_STRING = 16;

/** A rule id as reported: `secretlint/aws` for @secretlint/secretlint-rule-aws. */
function ruleName(id: string): string {
  return `secretlint/${id.replace(/^@secretlint\/secretlint-rule-/, '')}`;
}

/**
 * The text secretlint sees of a window (`text`: the window as latin1): the text itself, or
 * a binary's printable runs, one a line (one pass over the bytes, like strings(1)).
 */
export function lintableText(window: Buffer, text: string): string {
  if (!window.subarray(0, 8192).includes(0)) return text;
  const runs: string[] = [];
  let start = 0;
  for (let i = 0; i <= window.length; i++) {
    const c = i < window.length ? (window[i] ?? 0) : 0;
    if ((c >= 0x20 && c <= 0x7e) || c === 0x09) continue;
    if (i - start >= MIN_STRING) runs.push(text.slice(start, i));
    start = i + 1;
  }
  return runs.join('\n');
}

export class TokenScanner {
  private owners: string[] = [];
  private starts: number[] = [];
  private parts: string[] = [];
  private length = 0;

  constructor(private readonly onHit: (owner: string, rule: string) => void) {}

  /** Queues `text` of `owner` (a path); lints the queue when it is large enough. */
  async add(owner: string, text: string): Promise<void> {
    if (text.trim() === '') return;
    this.owners.push(owner);
    this.starts.push(this.length);
    this.parts.push(text, SEPARATOR);
    this.length += text.length + SEPARATOR.length;
    if (this.length >= BATCH) await this.flush();
  }

  /** Lints what is queued. */
  async flush(): Promise<void> {
    if (this.parts.length === 0) return;
    const { owners, starts, parts } = this;
    this.owners = [];
    this.starts = [];
    this.parts = [];
    this.length = 0;
    const result = await lintSource({
      source: { filePath: '/scan', content: parts.join(''), contentType: 'text' },
      options: { config: CONFIG, maskSecrets: true, noPhysicFilePath: true },
    });
    for (const message of result.messages) {
      const at = message.range[0];
      let lo = 0;
      let hi = starts.length - 1;
      while (lo < hi) {
        const mid = (lo + hi + 1) >> 1;
        if ((starts[mid] ?? 0) <= at) lo = mid;
        else hi = mid - 1;
      }
      this.onHit(owners[lo] ?? '', ruleName(message.ruleId));
    }
  }
}
