/**
 * rollout: gets servers onto a new boot drive, batch by batch. Per batch each server's CD
 * device is repointed, the server reset, and the batch waits until every server runs and
 * passes the health check before the next batch starts. On the first failure it stops:
 * the failed server goes back to the drive it ran and is restarted, servers not reached
 * are left untouched, and the step fails saying so. A rollback is a rollout to the
 * previous drive. `restart: none` repoints only: servers take the new drive at their next
 * boot. What the servers run afterwards goes to the summary and, as a ledger entry, to
 * the releases' retention (a release stays while any server runs or boots it). The cloud
 * is behind the provider interface: ElasticStack drives or Proxmox VE ISO volumes (`kind`).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { DisklessError, errorMessage } from '../errors.js';
import { elasticStack } from '../fleet/elasticstack.js';
import {
  describeCheck,
  needsAddress,
  parseHealthCheck,
  waitHealthy,
  type HealthCheck,
} from '../fleet/health.js';
import { proxmox } from '../fleet/proxmox.js';
import type { ArtifactView, Provider } from '../fleet/provider.js';
import { StepFailure, type Reporter } from '../report.js';
import { recordUpload } from '../releases/ledger.js';
import { isReleaseId } from '../releases/layout.js';
import { isoStorage, targetArtifact, type RolloutOptions, type RolloutReport } from './options.js';
import { chooseServers, planMove, type Move } from './plan.js';
import {
  artifactNoun,
  fleetRows,
  inPlanOrder,
  ledgerEntry,
  reportRollout,
  shownIn,
  shortId,
  type RolloutResult,
} from './result.js';

/** How often a restarting server is asked for its state, and the health check retried. */
const POLL_MS = 1_000;

interface Context {
  o: RolloutOptions;
  reporter: Reporter;
  provider: Provider;
  check: HealthCheck;
  target: ArtifactView;
  artifacts: Map<string, ArtifactView>;
  moves: Move[];
  updated: string[];
  restarted: string[];
  failed: string | undefined;
}

const nameOf = (m: Move): string => m.server.name || m.server.id;
/** Server names in the plan's order (servers of one batch finish in any order). */
const inOrder = (ctx: Context, names: string[]): string[] =>
  inPlanOrder(ctx.moves.map(nameOf), names);
/** What an artifact is called on this cloud. */
const noun = (ctx: Context): string => artifactNoun(ctx.provider.kind);
const shown = (ctx: Context, id: string | undefined): string => shownIn(ctx.artifacts, id);

/** Phase 1: the new artifact, every server and artifact, and what has to happen to each server. */
async function plan(ctx: Context): Promise<void> {
  const { o, provider } = ctx;
  const [servers, artifacts] = await Promise.all([
    provider.listServers(),
    provider.listArtifacts(),
  ]);
  ctx.artifacts = new Map(artifacts.map((a) => [a.id, a]));
  const wanted = targetArtifact(o);
  const target = ctx.artifacts.get(wanted) ?? (await provider.artifact(wanted));
  ctx.target = target;
  const inFamily = (id: string) =>
    id === target.id || ctx.artifacts.get(id)?.family === target.family;
  const chosen = chooseServers(o.servers, servers, inFamily, target.family, noun(ctx));
  const example = ctx.provider.kind === 'proxmox' ? 'ide2' : 'ide:0:1';
  ctx.moves = chosen.map((s) =>
    planMove(s, target, {
      device: o.device,
      inFamily,
      claims: artifacts,
      noun: noun(ctx),
      example,
    }),
  );
  ctx.reporter.info(
    `New ${noun(ctx)}: ${shown(ctx, target.id)}; ${ctx.moves.length} server(s); restart: ${o.restart}` +
      (o.restart === 'rolling'
        ? `, batches of ${o.batchSize}, health check ${describeCheck(ctx.check)} within ${o.healthTimeout} s`
        : ''),
  );
  for (const m of ctx.moves) ctx.reporter.info(`  ${nameOf(m)}: ${describeMove(ctx, m)}`);
}

/** What the rollout will do to one server, for the plan's progress lines. */
function describeMove(ctx: Context, m: Move): string {
  if (!m.repoint && !m.restart) return 'already runs it';
  const repoint = m.repoint
    ? `${m.device}: ${shown(ctx, m.from)} -> ${shortId(ctx.target.id)}`
    : `${m.device} names it already`;
  if (ctx.o.restart === 'none') return repoint;
  if (m.restart) return `${repoint}; reset`;
  return m.server.running ? repoint : `${repoint}; ${m.server.status}: takes it at its next start`;
}

/** Waits until the server runs again and passes the check; the reason when it does not. */
async function becomeHealthy(
  ctx: Context,
  m: Move,
  before: number | undefined,
): Promise<string | undefined> {
  const resetAt = Math.floor(Date.now() / 1000);
  const deadline = Date.now() + ctx.o.healthTimeout * 1000;
  // Until the API shows a new start, an old instance may still answer the health check.
  // A start less than 2 s before the reset cannot be told from the new one: accepted.
  const restarted = (started: number | undefined) =>
    started === undefined || before === undefined || started !== before || before >= resetAt - 2;
  let s = await ctx.provider.server(m.server.id);
  while (!s.running || !restarted(s.started)) {
    if (Date.now() + POLL_MS > deadline)
      return `it did not run again within ${ctx.o.healthTimeout} s (status ${s.status})`;
    await sleep(POLL_MS);
    s = await ctx.provider.server(m.server.id);
  }
  if (ctx.check.kind === 'none') return undefined;
  if (!s.address && needsAddress(ctx.check))
    return `the API shows no address for it, so health check ${describeCheck(ctx.check)} cannot run`;
  const why = await waitHealthy(
    ctx.check,
    { ip: s.address, name: s.name || s.id },
    {
      timeoutMs: Math.max(1_000, deadline - Date.now()),
      intervalMs: POLL_MS,
    },
  );
  return why === undefined
    ? undefined
    : `health check ${describeCheck(ctx.check)} failed within ${ctx.o.healthTimeout} s (${why})`;
}

/** One server's move; the reason it failed, or undefined. */
async function moveOne(ctx: Context, m: Move, restart: boolean): Promise<string | undefined> {
  const started = performance.now();
  try {
    if (m.repoint) {
      await ctx.provider.repoint(m.server.id, m.device, ctx.target.id);
      ctx.updated.push(nameOf(m));
    }
    if (!restart || !m.restart) return undefined;
    const before = m.server.started; // from the plan's listing: only a reset changes it
    ctx.restarted.push(nameOf(m));
    await ctx.provider.restart(m.server.id);
    const why = await becomeHealthy(ctx, m, before);
    if (why === undefined) {
      ctx.reporter.info(
        `  ${nameOf(m)}: running and healthy (${describeCheck(ctx.check)}) after ${((performance.now() - started) / 1000).toFixed(1)} s`,
      );
    }
    return why;
  } catch (error) {
    return errorMessage(error);
  }
}

/** Puts a failed server back on the drive it ran and restarts it; what happened, in words. */
async function revert(ctx: Context, m: Move): Promise<string> {
  const name = nameOf(m);
  try {
    // A repoint that failed (a concurrent edit, say) left the device as it was: not set again.
    const now = m.from && m.repoint ? await ctx.provider.server(m.server.id) : undefined;
    const changed = m.from !== undefined && now !== undefined && now.cds[m.device] !== m.from;
    if (changed && m.from) await ctx.provider.repoint(m.server.id, m.device, m.from);
    // Restarted only if this run reset it: a server whose repoint failed was never reset.
    if (!m.server.running || !ctx.restarted.includes(name)) {
      return changed || !now
        ? `${name} is back on ${shown(ctx, m.from)}`
        : `${name} was not changed (still on ${shown(ctx, m.from)})`;
    }
    const before = (await ctx.provider.server(m.server.id)).started;
    await ctx.provider.restart(m.server.id);
    const why = await becomeHealthy(ctx, m, before);
    return (
      `${name} is back on ${shown(ctx, m.from)} and was restarted` +
      (why ? `, but ${why}` : ', healthy again')
    );
  } catch (error) {
    return `putting ${name} back on ${shown(ctx, m.from)} failed too: ${errorMessage(error)}`;
  }
}

/** Phase 2: the batches, in order; throws after reverting the first batch that failed. */
async function rollBatches(ctx: Context): Promise<void> {
  const { o, reporter } = ctx;
  const rolling = o.restart === 'rolling';
  const todo = ctx.moves.filter((m) => m.repoint || (rolling && m.restart));
  const size = rolling ? o.batchSize : todo.length;
  for (let i = 0; i < todo.length; i += size) {
    const batch = todo.slice(i, i + size);
    reporter.info(
      `[${Math.min(i + size, todo.length)}/${todo.length}] ${batch.map(nameOf).join(', ')}: ${rolling ? 'repoint, reset, wait until healthy' : 'repoint'}`,
    );
    const results = await Promise.all(batch.map((m) => moveOne(ctx, m, rolling)));
    const failures = batch.flatMap((m, k) =>
      results[k] === undefined ? [] : [{ m, why: results[k] ?? '' }],
    );
    if (failures.length === 0) continue;
    ctx.failed = failures.map((f) => nameOf(f.m)).join(' ');
    const reverted: string[] = [];
    for (const f of failures) {
      ctx.updated = ctx.updated.filter((n) => n !== nameOf(f.m));
      reverted.push(await revert(ctx, f.m));
    }
    const untouched = todo.slice(i + size).map(nameOf);
    throw new DisklessError(
      `Rollout stopped: ${failures.map((f) => `server ${nameOf(f.m)}: ${f.why}`).join('; ')}. ${reverted.join('; ')}. ` +
        (untouched.length ? `Not touched: ${untouched.join(', ')}. ` : '') +
        (ctx.updated.length
          ? `Already on the new ${noun(ctx)}: ${inOrder(ctx, ctx.updated).join(', ')}.`
          : 'No other server was changed.'),
    );
  }
  if (!rolling && todo.length > 0) {
    reporter.info(
      `restart: none: ${todo.length} server(s) repointed; they keep running the old ${noun(ctx)} and take ${shown(ctx, ctx.target.id)} at their next boot`,
    );
  }
}

/** Phase 3: what every server runs now, and the ledger entry; the step's result. */
async function finish(ctx: Context, failure: string | undefined): Promise<RolloutResult> {
  const { o, provider } = ctx;
  const [servers, artifacts] = await Promise.all([
    provider.listServers(),
    provider.listArtifacts(),
  ]);
  ctx.artifacts = new Map(artifacts.map((a) => [a.id, a]));
  const previous = mostCommon(
    ctx.moves.map((m) => m.from).filter((f): f is string => f !== undefined && f !== ctx.target.id),
  );
  const entry =
    o.ledgerName === undefined
      ? undefined
      : ledgerEntry({
          name: o.ledgerName,
          target: ctx.target,
          previous: previous ? ctx.artifacts.get(previous) : undefined,
          servers,
          artifacts,
        });
  if (!entry && o.ledgerName !== undefined)
    ctx.reporter.warning(
      `${ctx.provider.kind === 'proxmox' ? 'ISO' : 'Drive'} ${ctx.target.id} records no release${ctx.provider.kind === 'proxmox' ? '' : ' (user:diskless-release)'}: no ledger entry, retention cannot tell which release its servers run`,
    );
  if (entry && o.rootfsTarget && !o.dryRun) {
    await recordUpload(o.rootfsTarget, entry);
    ctx.reporter.info(
      `Ledger: ${o.rootfsTarget}/ledger/${entry.target}.json (${[entry.release, ...(entry.also ?? []).map((a) => a.release)].join(', ')})`,
    );
  }
  const chosen = new Set(ctx.moves.map((m) => m.server.id));
  return {
    kind: provider.kind,
    target: ctx.target,
    previous,
    artifacts: ctx.artifacts,
    planned: ctx.moves.map(nameOf),
    updated: ctx.updated,
    restarted: ctx.restarted,
    failedServer: ctx.failed,
    failure,
    ledger: o.dryRun ? undefined : entry,
    fleet: fleetRows(
      servers.filter((s) => chosen.has(s.id)),
      ctx.artifacts,
    ),
    dryRun: o.dryRun,
    restart: o.restart,
    batchSize: o.batchSize,
    check: ctx.check,
  };
}

function mostCommon(ids: string[]): string | undefined {
  const counts = new Map<string, number>();
  for (const id of ids) counts.set(id, (counts.get(id) ?? 0) + 1);
  return [...counts].sort((a, b) => b[1] - a[1])[0]?.[0];
}

/** The provider of the `kind` input, over a new API client. */
export function connectProvider(o: RolloutOptions, reporter: Reporter): Provider {
  if (o.kind === 'proxmox') {
    if (o.tlsInsecure)
      reporter.warning(`tls-insecure: the certificate of ${o.apiUrl} is not checked`);
    return proxmox({
      url: o.apiUrl,
      tokenId: o.tokenId ?? '',
      secret: o.tokenSecret ?? '',
      tls: { caFile: o.tlsCaFile, fingerprint: o.tlsFingerprint, insecure: o.tlsInsecure },
      node: o.node ?? '',
      storage: isoStorage(o),
      restartMethod: o.restartMethod,
    });
  }
  return elasticStack({
    url: o.apiUrl,
    user: o.apiUser ?? '',
    key: o.apiKey ?? '',
    onRetry: (e, n, ms) => {
      reporter.debug(`retry ${n} in ${ms} ms: ${errorMessage(e)}`);
    },
  });
}

/** A rollout that stopped: its report (for the runners) and its result (typed). */
export class RolloutFailure extends StepFailure {
  override name = 'RolloutFailure';
  /** The report reportRollout made of `result`. */
  declare readonly report: RolloutReport;
  constructor(
    message: string,
    readonly result: RolloutResult,
  ) {
    super(message, reportRollout(result));
  }
}

/**
 * Rolls the fleet onto the new artifact; returns what it did. A failed rollout throws a
 * RolloutFailure carrying what it did before it stopped.
 */
export async function rollout(o: RolloutOptions, reporter: Reporter): Promise<RolloutResult> {
  const check = parseHealthCheck(o.healthCheck) ?? { kind: 'none' };
  const provider = connectProvider(o, reporter);
  const ctx: Context = {
    o,
    reporter,
    provider,
    check,
    target: undefined as unknown as ArtifactView,
    artifacts: new Map(),
    moves: [],
    updated: [],
    restarted: [],
    failed: undefined,
  };
  try {
    await reporter.group('Plan the rollout', () => plan(ctx));
    if (ctx.target.release !== undefined && !isReleaseId(ctx.target.release)) {
      reporter.warning(
        `Drive ${ctx.target.id} records release "${ctx.target.release}", which is not a release id`,
      );
    }
    if (o.dryRun) {
      reporter.info('Dry run: no server was changed');
      return await finish(ctx, undefined);
    }
    let failure: string | undefined;
    await reporter
      .group('Roll out', () => rollBatches(ctx))
      .catch((error: unknown) => {
        if (!(error instanceof DisklessError)) throw error;
        failure = error.message;
      });
    if (failure === undefined) return await finish(ctx, undefined);
    const said = failure;
    const result = await finish(ctx, said).catch((error: unknown) => {
      throw new DisklessError(
        `${said} (reading the servers afterwards failed: ${errorMessage(error)})`,
      );
    });
    throw new RolloutFailure(said, result);
  } finally {
    await provider.close();
  }
}
