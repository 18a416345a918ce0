/**
 * Worker tasks: each call that Proxmox runs as a worker returns a UPID at once and
 * ends later, with `TASK OK` or `TASK ERROR: <text>` as its last log line and the text
 * as its exitstatus (proxmox-api.md section 4).
 */
import { paramError } from './pve-error.js';

export interface Task {
  upid: string;
  node: string;
  pid: number;
  pstart: number;
  starttime: number;
  type: string;
  id: string;
  /** `user@realm!tokenid` for token tasks. */
  user: string;
  log: string[];
  status: 'running' | 'stopped';
  exitstatus?: string;
  done: Promise<void>;
}

const UPID =
  /^UPID:([a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?):([0-9A-F]{8}):([0-9A-F]{8,9}):([0-9A-F]{8}):([^:\s]+):([^:\s]*):([^:\s]+):$/;

/** The parts of a UPID, or undefined when it does not parse. */
export function parseUpid(upid: string): { node: string; type: string; user: string } | undefined {
  const m = UPID.exec(upid);
  if (!m) return undefined;
  return { node: m[1] ?? '', type: m[6] ?? '', user: m[8] ?? '' };
}

function hex(n: number, width: number): string {
  return n.toString(16).toUpperCase().padStart(width, '0');
}

export class Tasks {
  private readonly tasks = new Map<string, Task>();
  private pid = 1000 + Math.floor(Math.random() * 1000);
  private readonly running = new Set<Promise<void>>();

  /** Tasks started, by `<type>` and by `<type>:<id>` (e.g. `qmreset:101`). */
  readonly counts: Record<string, number> = {};

  constructor(private readonly taskMs: number) {}

  /**
   * Starts a worker: `work` runs after the task's time, its log lines go to the task log,
   * and a throw ends the task with that text.
   */
  start(
    node: string,
    type: string,
    id: string,
    user: string,
    work: (log: (line: string) => void) => Promise<void> | void,
  ): string {
    const pid = ++this.pid;
    for (const key of id === '' ? [type] : [type, `${type}:${id}`])
      this.counts[key] = (this.counts[key] ?? 0) + 1;
    const starttime = Math.floor(Date.now() / 1000);
    const pstart = Math.floor(performance.now() / 10);
    const upid = `UPID:${node}:${hex(pid, 8)}:${hex(pstart, 8)}:${hex(starttime, 8)}:${type}:${id}:${user}:`;
    const task: Task = {
      upid,
      node,
      pid,
      pstart,
      starttime,
      type,
      id,
      user,
      log: [],
      status: 'running',
      done: Promise.resolve(),
    };
    const log = (line: string) => task.log.push(line);
    task.done = (async () => {
      await new Promise((resolve) => setTimeout(resolve, this.taskMs));
      try {
        await work(log);
        task.exitstatus = 'OK';
        log('TASK OK');
      } catch (error) {
        const text = (error instanceof Error ? error.message : String(error)).replace(/\n/g, ' ');
        task.exitstatus = text;
        log(`TASK ERROR: ${text}`);
      }
      task.status = 'stopped';
    })();
    this.tasks.set(upid, task);
    this.running.add(task.done);
    void task.done.finally(() => this.running.delete(task.done));
    return upid;
  }

  /** The task a UPID names on `node`, or Proxmox's 400s. */
  get(node: string, upid: string): Task {
    const parsed = parseUpid(upid);
    if (!parsed) throw paramError({ upid: 'unable to parse worker upid' });
    const task = this.tasks.get(upid);
    if (!task || parsed.node !== node) throw paramError({ upid: 'no such task' });
    return task;
  }

  /** The status object of GET …/tasks/{upid}/status. */
  status(task: Task): Record<string, unknown> {
    const bang = task.user.indexOf('!');
    return {
      upid: task.upid,
      node: task.node,
      pid: task.pid,
      pstart: task.pstart,
      starttime: task.starttime,
      type: task.type,
      id: task.id,
      user: bang < 0 ? task.user : task.user.slice(0, bang),
      ...(bang < 0 ? {} : { tokenid: task.user.slice(bang + 1) }),
      status: task.status,
      ...(task.exitstatus === undefined ? {} : { exitstatus: task.exitstatus }),
    };
  }

  /** The lines of GET …/log: `start` (0-based) and `limit` (0: all). */
  logLines(
    task: Task,
    start: number,
    limit: number,
  ): { lines: { n: number; t: string }[]; total: number } {
    const all = task.log.length === 0 ? ['no content'] : task.log;
    const slice = all.slice(start, limit > 0 ? start + limit : undefined);
    return { lines: slice.map((t, i) => ({ n: start + i + 1, t })), total: all.length };
  }

  /** Waits for every task to end (on close). */
  async settle(): Promise<void> {
    await Promise.allSettled([...this.running]);
  }
}
