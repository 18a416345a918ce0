/** Picks the initramfs cache backend from the `cache` and `cache-dir` inputs. */
import type { Env } from '../env.js';
import { DisklessError } from '../errors.js';
import type { Reporter } from '../report.js';
import { GithubCache, githubCacheAvailable } from './cache-github.js';
import { LocalCache, type InitramfsCache } from './cache-local.js';

export interface CacheChoice {
  cache: 'auto' | 'local' | 'github' | 'off';
  cacheDir: string | undefined;
  maxAgeDays: number;
  maxBytes: number;
}

/**
 * auto: local when a cache directory is given, else GitHub's where the runner has it
 * (by `env`, the step's environment), else none. local needs cache-dir. github where it
 * is not available builds uncached, with a warning (the same workflow then also runs
 * outside Actions).
 */
export function chooseCache(
  o: CacheChoice,
  reporter: Reporter,
  env: Env,
): InitramfsCache | undefined {
  const local = () =>
    o.cacheDir ? new LocalCache(o.cacheDir, o.maxAgeDays, o.maxBytes) : undefined;
  switch (o.cache) {
    case 'off':
      return undefined;
    case 'local': {
      const c = local();
      if (!c) {
        throw new DisklessError(
          'Input "cache-dir" is required when input "cache" is local: expected the directory of the initramfs cache',
        );
      }
      return c;
    }
    case 'github':
      if (githubCacheAvailable(env)) return new GithubCache(env);
      reporter.warning(
        "cache is github, but GitHub's cache is not available here (no ACTIONS_CACHE_URL or ACTIONS_RESULTS_URL); building the initramfs without a cache",
      );
      return undefined;
    case 'auto':
      return local() ?? (githubCacheAvailable(env) ? new GithubCache(env) : undefined);
  }
}
