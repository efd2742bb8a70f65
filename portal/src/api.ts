// The management API as the portal uses it: the session cookie goes along, changes carry the
// session's CSRF token, and errors come back as ApiError with the API's code and message.

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** What the API named in `error.details` (422: one entry per invalid file). */
    readonly details: ErrorDetail[] = [],
  ) {
    super(message);
  }
}

export interface ErrorDetail {
  file?: string;
  message: string;
}

let csrf: string | null = null;

/** Remembers the CSRF token of the session just opened or found. */
export function setCsrf(token: string | null): void {
  csrf = token;
}

export async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  return send<T>(method, path, body === undefined ? undefined : JSON.stringify(body), "application/json");
}

/** A call whose body is plain text (an app setting's value). */
export async function callText<T>(method: string, path: string, text: string): Promise<T> {
  return send<T>(method, path, text, "text/plain; charset=utf-8");
}

async function send<T>(method: string, path: string, body: string | undefined, type: string): Promise<T> {
  const headers: Record<string, string> = {};
  if (body !== undefined) headers["Content-Type"] = type;
  if (method !== "GET" && csrf) headers["X-CSRF-Token"] = csrf;
  const r = await fetch(path, { method, headers, body, credentials: "same-origin" });
  const text = await r.text();
  const data = text ? safeJson(text) : null;
  if (!r.ok) throw apiError(r, text, data);
  return data as T;
}

function apiError(r: Response, text: string, data: unknown): ApiError {
  const e = (data as { error?: { code?: string; message?: string; details?: unknown } } | null)?.error;
  const details = Array.isArray(e?.details) ? (e.details as ErrorDetail[]) : [];
  return new ApiError(r.status, e?.code ?? String(r.status), e?.message ?? (text || r.statusText), details);
}

/** A file's raw bytes (an app's file as stored in its package). */
export async function callBytes(path: string): Promise<ArrayBuffer> {
  const r = await fetch(path, { credentials: "same-origin" });
  if (!r.ok) {
    const text = await r.text();
    throw apiError(r, text, text ? safeJson(text) : null);
  }
  return r.arrayBuffer();
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

export interface SessionInfo {
  user: string;
  csrf: string;
}

export interface App {
  name: string;
  activeVersion: number | null;
  minReplicas: number;
  maxReplicas: number;
  labels: Record<string, string>;
  /** Replicas of the live version ready to serve. */
  replicasReady?: number;
  /** Invocations and failed ones over the last 60 seconds. */
  invocationsPerMinute?: number;
  errorsPerMinute?: number;
}

export interface Deployment {
  id: string;
  status: number;
  statusText: string;
  complete: boolean;
  version: number | null;
  deployer: string;
  received: number;
  end: number | null;
}

export const STATUS_NAMES = ["Pending", "Building", "Deploying", "Failed", "Success"];
export const FAILED = 3;
export const SUCCESS = 4;

export interface DeploymentDetail extends Deployment {
  log: { time: number; type: number; message: string }[];
  author: string;
  message: string;
}

/** The live version's files (version null and no files before the first deployment). */
export interface FileListing {
  version: number | null;
  files: { path: string; size: number }[];
}

/** One file of a change: new content, or a deletion. */
export type FileChange = { path: string; content: string } | { path: string; delete: true };

export interface ChangeAccepted {
  deployment: string;
  version: number;
}

export interface Invocation {
  id: string;
  function: string;
  trigger: string;
  start: number;
  durationMs: number | null;
  status: "ok" | "failed" | string;
  error: string | null;
  worker: string | null;
  version: number | null;
}

export interface LogLine {
  seq: number;
  time: number;
  level: string;
  function: string | null;
  invocationId: string | null;
  message: string;
}

export interface InvocationDetail extends Invocation {
  logs: LogLine[];
}

export interface InvocationPage {
  invocations: Invocation[];
  sampled: boolean;
}

export interface MinuteStats {
  start: number;
  count: number;
  errors: number;
  p50: number | null;
  p95: number | null;
  p99: number | null;
}

export interface Stats {
  minutes: MinuteStats[];
}

/** The API path of app `app`, with `rest` appended. */
export function appPath(app: string, rest = ""): string {
  return `/api/apps/${encodeURIComponent(app)}${rest}`;
}

export interface Worker {
  /** How it isolates function processes: its mode and each layer ("on", "cgroup v1", or "off: why"). */
  isolation?: { mode: string; namespaces: string; appUsers: string; limits: string } | null;
  id: string;
  name: string;
  cpuMillis: number;
  memoryMib: number;
  maxApps: number;
  labels: Record<string, string>;
  window: string | null;
  heartbeatAgeMs: number;
  draining: boolean;
  load: { loadAverage1m?: number | null; memoryAvailableMib?: number | null } | null;
  apps: {
    app: string;
    version: number | null;
    ready: boolean;
    /** What the app's processes use on this worker (isolating workers only). */
    usage?: { memoryBytes: number | null; memoryLimitBytes: number | null; cpuSeconds: number | null; oomKills: number } | null;
  }[];
}
