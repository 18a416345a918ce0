import type { ServerRunner } from '../server-runner.js';

/**
 * The Proxmox VE emulator's public types: its tokens (with an optional privilege list
 * for the permission paths), storages, VMs, and how it is started. The API facts it
 * follows are in ../shared/proxmox-api.md.
 */

/** An API token `user@realm!tokenid` and its secret. */
export interface PveToken {
  /** `user@realm!tokenid`, e.g. `root@pam!ci`. */
  id: string;
  secret: string;
  /**
   * The privileges the token has on every path (e.g. `VM.Audit`, `VM.PowerMgmt`,
   * `Datastore.AllocateTemplate`); undefined: all of them (a full-privilege root token).
   */
  privileges?: string[];
}

export interface PveStorage {
  /** The storage ID, e.g. `local`. */
  id: string;
  /** Content types, e.g. ['iso', 'vztmpl']; an upload of iso needs `iso`. Default ['iso']. */
  content?: string[];
  /** Whether it is shared by all nodes (NFS, CephFS); default true. */
  shared?: boolean;
  /** `dir` (has a path, default) or e.g. `rbd` (no path: uploads refused). */
  type?: string;
}

export interface PveVmSpec {
  vmid: number;
  name: string;
  /** Default: the first node. */
  node?: string;
  /** Config keys besides name, e.g. { ide2: 'local:iso/a.iso,media=cdrom', agent: '1' }. */
  config?: Record<string, string | number>;
  /** Starts running (default false). */
  running?: boolean;
  /** The address its guest agent reports while it runs (needs `agent` in the config). */
  address?: string;
  tags?: string[];
  pool?: string;
}

export interface PveEmulatorOptions {
  /** Directory holding the storages' files (created if missing). */
  dataDir: string;
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0: any free port. */
  port?: number;
  tokens: PveToken[];
  /** Node names; default ['pve']. */
  nodes?: string[];
  /** Default one shared `local` storage holding ISOs. */
  storages?: PveStorage[];
  vms?: PveVmSpec[];
  /** The deliberate delay of 401/403 answers; Proxmox waits 3 s (the default). */
  authFailureDelayMs?: number;
  /** How long a task takes before it ends (default 50 ms: clients must poll). */
  taskMs?: number;
  /** The network between client and node, as the ElasticStack emulator models it. */
  link?: PveLink;
  /**
   * What runs a started VM (the ElasticStack emulator's server runner, e.g. its QEMU
   * runner: the VM boots its CD-ROM ISOs, its address is the VM's `address`); without
   * one VMs are state only. Closed with the emulator.
   */
  runner?: ServerRunner;
}

/** Latency and bandwidth caps (upload bodies are paced through them); all off by default. */
export interface PveLink {
  /** Added before every response. */
  latencyMs?: number;
  /** Bandwidth cap of each TCP connection, bytes per second. */
  connectionBytesPerSecond?: number;
  /** One cap shared by all connections, bytes per second. */
  linkBytesPerSecond?: number;
}

/** Counters since start, updated in place. */
export interface PveEmulatorStats {
  requests: number;
  /** Responses by HTTP status. */
  statuses: Record<number, number>;
  /** Upload body bytes received. */
  uploadBytes: number;
  uploads: number;
  /** Worker tasks started, by type and by `<type>:<vmid>` (e.g. `qmreset:101`). */
  tasks: Record<string, number>;
}

export interface PveEmulator {
  /** Base URL of the API, e.g. https://127.0.0.1:40123/api2/json */
  url: string;
  /** host:port, as proxmoxer takes it. */
  hostPort: string;
  /** The self-signed certificate (PEM) the server presents. */
  certificate: string;
  /** Its SHA-256 fingerprint, colon-separated upper-case hex, as Proxmox shows it. */
  fingerprint: string;
  stats: PveEmulatorStats;
  /** Changes a VM's config behind the API's back (a concurrent edit by another user). */
  editConfig(vmid: number, changes: Record<string, string | number>): void;
  /** Stops accepting, drops connections, removes temporary upload files. */
  close(): Promise<void>;
}
