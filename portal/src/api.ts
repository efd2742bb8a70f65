// The management API as the portal uses it: the session cookie goes along, changes carry the
// session's CSRF token, and errors come back as ApiError with the API's code and message.

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
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
  if (!r.ok) {
    const e = (data as { error?: { code?: string; message?: string } } | null)?.error;
    throw new ApiError(r.status, e?.code ?? String(r.status), e?.message ?? (text || r.statusText));
  }
  return data as T;
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

export interface Worker {
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
  apps: { app: string; version: number | null; ready: boolean }[];
}
