// One invocation as the portal shows it (status, duration, worker, version, error and its log
// lines), and following a fresh one until its record arrives.
import { ApiError, appPath, call } from "./api";
import type { Invocation, InvocationDetail, LogLine } from "./api";
import { el, message } from "./dom";
import { sleep } from "./lifecycle";

/** A time of day to the millisecond. */
export function clock(ms: number): string {
  const d = new Date(ms);
  const pad = (n: number, w = 2) => String(n).padStart(w, "0");
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

export function duration(ms: number | null): string {
  if (ms === null || ms === undefined) return "";
  return ms < 10 ? `${ms.toFixed(2)} ms` : ms < 1000 ? `${ms.toFixed(0)} ms` : `${(ms / 1000).toFixed(2)} s`;
}

/** One log line: time, level, (function,) message. */
export function logItem(line: LogLine, withFunction = false): HTMLElement {
  const level = line.level || "Information";
  return el(
    "li",
    { class: `logline level-${level.toLowerCase()}` },
    el("time", { datetime: new Date(line.time).toISOString() }, clock(line.time)),
    " ",
    el("span", { class: "level" }, level),
    " ",
    withFunction && line.function ? el("span", { class: "fn" }, line.function) : "",
    withFunction && line.function ? " " : "",
    el("span", { class: "msg" }, line.message),
  );
}

/** An invocation's summary line: status, duration, when, where. */
export function summary(inv: Invocation): HTMLElement {
  return el(
    "p",
    {},
    el("span", { class: inv.status === "ok" ? "ok" : "error" }, inv.status),
    ` · ${duration(inv.durationMs)} · ${inv.function} (${inv.trigger}) · ${new Date(inv.start).toLocaleString()}`,
    inv.worker ? ` · worker ${inv.worker}` : "",
    inv.version !== null && inv.version !== undefined ? ` · version ${inv.version}` : "",
  );
}

/** The record and log lines of one invocation. */
export function details(inv: InvocationDetail, logLabel: string): HTMLElement[] {
  const out: HTMLElement[] = [summary(inv)];
  if (inv.error) out.push(el("pre", { class: "error", "aria-label": "Error" }, inv.error));
  out.push(
    inv.logs.length
      ? el("ol", { class: "loglines", "aria-label": logLabel }, ...inv.logs.map((l) => logItem(l)))
      : message("No log lines.", "info"),
  );
  return out;
}

/** Waits for invocation `id`'s record (it arrives within about a second), then polls every
 * 500 ms for up to `forMs` while its log lines may still follow, and shows it in `target`. */
export async function followInvocation(app: string, id: string, target: HTMLElement, forMs = 10_000): Promise<void> {
  const end = Date.now() + forMs;
  target.replaceChildren(message("Waiting for the invocation's record…", "info"));
  let found: InvocationDetail | null = null;
  while (target.isConnected) {
    try {
      // The first ask waits (server side) for the record to arrive; later ones only look
      // for log lines that came after it.
      const wait: string = found ? "" : "?wait=10";
      found = await call<InvocationDetail>("GET", appPath(app, `/invocations/${encodeURIComponent(id)}${wait}`));
      target.replaceChildren(...details(found, "Log of this invocation"));
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 404)) {
        target.replaceChildren(message(e instanceof Error ? e.message : String(e)));
        return;
      }
      break;
    }
    if ((found && found.logs.length > 0) || Date.now() >= end) break;
    await sleep(500);
  }
  if (!found && target.isConnected) {
    target.replaceChildren(message(`No record of invocation ${id} arrived within ${forMs / 1000} s.`, "info"));
  }
}
