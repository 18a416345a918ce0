// What the benchmark parts share: their command-line flags and the median of their runs.

/** The value after `--name` on the part's command line, if given. */
export function flag(name: string): string | undefined {
  const args = process.argv.slice(2);
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

/** The middle run (the upper middle of an even count): one slow run does not move it. */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
}
