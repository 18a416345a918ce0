/** A progress line at a steady pace on long transfers: percent, MB/s, ETA, retries. */
export interface Progress {
  add(bytes: number): void;
  stop(): void;
}

function mib(bytes: number): string {
  return (bytes / 2 ** 20).toFixed(1);
}

export function startProgress(
  label: string,
  total: number,
  print: (line: string) => void,
  retries: () => number,
  everyMs = 5_000,
): Progress {
  const started = performance.now();
  let done = 0;
  const line = () => {
    const seconds = (performance.now() - started) / 1000;
    const rate = seconds > 0 ? done / seconds : 0;
    const eta = rate > 0 ? Math.ceil((total - done) / rate) : undefined;
    const percent = total > 0 ? Math.floor((100 * done) / total) : 100;
    print(
      `${label}: ${percent}% (${mib(done)} of ${mib(total)} MiB), ${(rate / 1e6).toFixed(1)} MB/s` +
        `${eta === undefined ? '' : `, ETA ${eta} s`}, ${retries()} retries`,
    );
  };
  const timer = setInterval(line, everyMs);
  timer.unref();
  return {
    add(bytes) {
      done += bytes;
    },
    stop() {
      clearInterval(timer);
    },
  };
}
