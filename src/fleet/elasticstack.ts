/**
 * The ElasticStack provider (elastichosts-api.md section 5) over the drive API client, so
 * it has the same auth, retries and one-line errors as upload-drive. A CD device is a
 * device key (`ide:0:1`) holding a drive UUID with `<device>:media cdrom`; repointing is
 * servers/<uuid>/set with both keys; restarting is servers/<uuid>/reset. Answers of
 * either shape are read: numbers or strings, lists as arrays or space-separated.
 */
import { DriveApiError } from '../drive/api-error.js';
import { DriveApi, showAnswer, type DriveInfo } from '../drive/api.js';
import { DisklessError } from '../errors.js';
import { explainApiError } from '../upload/target.js';
import { claimsOf, serverClaims } from '../drive/claims.js';
import { familyOf } from '../upload/family.js';
import { KEYS, releaseOf } from '../upload/record.js';
import { type ArtifactView, type Provider, type ServerView } from './provider.js';

const DEVICE = /^(ide:[01]:[01]|scsi:0:[0-7]|block:[0-7]|ata:0:[0-5])$/;

function words(v: unknown): string[] {
  if (Array.isArray(v)) return v.map(String).filter((w) => w !== '');
  if (typeof v === 'string') return v.split(/\s+/).filter((w) => w !== '');
  return [];
}

function text(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return String(v);
  return undefined;
}

/** A server object of the API as a ServerView, or a one-line error naming the request. */
export function toServerView(answer: unknown, request: string): ServerView {
  if (typeof answer !== 'object' || answer === null || Array.isArray(answer)) {
    throw new DisklessError(
      `${request}: expected a server (a JSON object), got ${showAnswer(answer)}`,
    );
  }
  const o = answer as Record<string, unknown>;
  const id = text(o.server);
  if (!id)
    throw new DisklessError(
      `${request}: expected a server with "server", got ${showAnswer(answer)}`,
    );
  const status = text(o.status) ?? 'unknown';
  const running = status === 'active';
  const cds: Record<string, string> = {};
  for (const [key, value] of Object.entries(o)) {
    if (DEVICE.test(key) && text(o[`${key}:media`]) === 'cdrom')
      cds[key] = (text(value) ?? '').toLowerCase();
  }
  const dhcp = text(o['nic:0:dhcp']);
  const started = Number(text(o.started));
  return {
    id,
    name: text(o.name) ?? '',
    tags: words(o.tags),
    status,
    running,
    started: running && Number.isFinite(started) && started > 0 ? started : undefined,
    address: text(o['nic:0:dhcp:ip']) || (dhcp && dhcp !== 'auto' ? dhcp : undefined),
    cds,
  };
}

export function driveArtifact(d: DriveInfo): ArtifactView {
  return {
    id: d.uuid,
    name: d.name,
    release: releaseOf(d) || undefined,
    sha256: d.meta[KEYS.sha256] || undefined,
    family: familyOf(d.name),
    claimedBy: serverClaims(d),
  };
}

function notFound(error: unknown): boolean {
  return (
    error instanceof DriveApiError &&
    (error.status === 404 ||
      (error.status === 400 && /not be found|missing/i.test(error.detail + error.type)))
  );
}

export class ElasticStackProvider implements Provider {
  readonly kind = 'elasticstack';
  constructor(readonly api: DriveApi) {}

  /** Runs an API call; refused credentials or an unreachable API become one clear line. */
  private async run<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      throw explainApiError(error, this.api);
    }
  }

  listServers(): Promise<ServerView[]> {
    return this.run(async () => {
      const request = this.api.requestName('GET', 'servers/info');
      const out = await this.api.call('GET', 'servers/info', { retry: true });
      if (!Array.isArray(out)) {
        throw new DisklessError(
          `${request}: expected a JSON array of servers, got ${showAnswer(out)}`,
        );
      }
      return out
        .map((s) => toServerView(s, request))
        .sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id));
    });
  }

  server(id: string): Promise<ServerView> {
    const path = `servers/${id}/info`;
    return this.run(async () =>
      toServerView(
        await this.api.call('GET', path, { retry: true }),
        this.api.requestName('GET', path),
      ),
    );
  }

  listArtifacts(): Promise<ArtifactView[]> {
    return this.run(async () => (await this.api.infoAll()).map(driveArtifact));
  }

  artifact(id: string): Promise<ArtifactView> {
    return this.run(async () => {
      try {
        return driveArtifact(await this.api.info(id));
      } catch (error) {
        if (notFound(error)) {
          throw new DisklessError(
            `Drive ${id}: there is no drive with that UUID for user ${this.api.user} at ${this.api.url.href}`,
          );
        }
        throw error;
      }
    });
  }

  repoint(server: string, device: string, artifact: string): Promise<void> {
    const path = `servers/${server}/set`;
    return this.run(async () => {
      const answer = await this.api.call('POST', path, {
        input: { [device]: artifact, [`${device}:media`]: 'cdrom' },
        retry: true,
      });
      // The set answers with the server's info: it must now name the new drive.
      const after = toServerView(answer, this.api.requestName('POST', path));
      if (after.cds[device] !== artifact.toLowerCase()) {
        throw new DisklessError(
          `${this.api.requestName('POST', path)}: the answer shows ${device} holding ${after.cds[device] ?? 'nothing'}, not ${artifact}`,
        );
      }
    });
  }

  restart(server: string): Promise<void> {
    return this.run(async () => {
      await this.api.call('POST', `servers/${server}/reset`, { retry: true });
    });
  }

  close(): Promise<void> {
    return this.api.close();
  }
}

/** A provider over a new API client with upload-drive's connection and retry settings. */
export function elasticStack(o: {
  url: string;
  user: string;
  key: string;
  onRetry?: (error: unknown, attempt: number, delayMs: number) => void;
}): ElasticStackProvider {
  return new ElasticStackProvider(
    new DriveApi({ url: o.url, user: o.user, key: o.key, connections: 4, onRetry: o.onRetry }),
  );
}

/**
 * Who holds the drive, for an error line: `server <uuid> "<name>"` per server (names
 * from servers/info, best effort), and the copies in progress.
 */
export async function describeHolders(api: DriveApi, d: DriveInfo): Promise<string> {
  const held = serverClaims(d);
  const names = new Map<string, string>();
  if (held.length > 0) {
    const all = await new ElasticStackProvider(api).listServers().catch(() => []);
    for (const s of all) names.set(s.id, s.name);
  }
  const parts = held.map((uuid) => {
    const name = names.get(uuid);
    return `server ${uuid}${name ? ` "${name}"` : ''}`;
  });
  if (claimsOf(d).some((c) => /:imaging:/.test(c))) parts.push('a server-side copy (imaging)');
  return parts.length > 0 ? parts.join(', ') : (d.claimed ?? 'unknown holders');
}
