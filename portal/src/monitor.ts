// An app's monitor (#/apps/{app}/monitor): invocations and errors per minute and latency
// percentiles over the last hour, the live log stream, and the invocation history with each
// invocation's details and log lines; all for one function or every one.
import { appPath, call } from "./api";
import type { Invocation, InvocationDetail, InvocationPage, LogLine, Stats } from "./api";
import { chart } from "./chart";
import { el, message } from "./dom";
import { clock, details, duration, logItem } from "./invocations";
import { every, onLeave } from "./lifecycle";

/** Log lines kept on the page (older ones are dropped from the top). */
const MAX_LINES = 1000;
const PAGE = 50;

function select(id: string, options: [string, string][]): HTMLSelectElement {
  const s = el("select", { id });
  for (const [v, label] of options) s.append(el("option", { value: v }, label));
  return s;
}

export async function monitorView(app: string, show: (...nodes: Node[]) => void): Promise<void> {
  let functions: { name: string; trigger: string }[] = [];
  try {
    functions = (await call<{ functions: { name: string; trigger: string }[] }>("GET", appPath(app, "/functions"))).functions;
  } catch {
    // Without the list the filter offers every function only.
  }
  const fn = select("m-function", [["", "All functions"], ...functions.map((f): [string, string] => [f.name, f.name])]);
  const filterBar = el(
    "form",
    { class: "inline", "aria-label": "Which function" },
    el("label", { for: "m-function" }, "Function"),
    fn,
  );
  filterBar.addEventListener("submit", (ev) => ev.preventDefault());
  const only = () => (fn.value ? `function=${encodeURIComponent(fn.value)}` : "");

  // Charts of the last hour, every 10 s.
  const charts = el("div", { class: "charts" });
  const totals = el("p", { class: "info" });
  let statsBusy = false;
  const loadStats = async () => {
    if (statsBusy) return;
    statsBusy = true;
    try {
      const q = only();
      const s = await call<Stats>("GET", appPath(app, `/stats?minutes=60${q ? `&${q}` : ""}`));
      const times = s.minutes.map((m) => m.start);
      const count = s.minutes.reduce((a, m) => a + m.count, 0);
      const errors = s.minutes.reduce((a, m) => a + m.errors, 0);
      totals.textContent = `${count} invocation${count === 1 ? "" : "s"}, ${errors} failed, in the last 60 minutes.`;
      charts.replaceChildren(
        chart("Invocations per minute", "/min", times, [{ name: "invocations", values: s.minutes.map((m) => m.count), cls: "s1" }], true),
        chart("Errors per minute", "/min", times, [{ name: "errors", values: s.minutes.map((m) => m.errors), cls: "s3" }], true),
        chart(
          "Latency (ms)",
          "ms",
          times,
          [
            { name: "p50", values: s.minutes.map((m) => m.p50), cls: "s1" },
            { name: "p95", values: s.minutes.map((m) => m.p95), cls: "s2" },
            { name: "p99", values: s.minutes.map((m) => m.p99), cls: "s3" },
          ],
          false,
        ),
      );
    } catch (e) {
      totals.replaceChildren(message(`No statistics: ${e instanceof Error ? e.message : String(e)}`));
    } finally {
      statsBusy = false;
    }
  };

  // The live log.
  const lines = el("ol", { class: "loglines" });
  const scroller = el("div", { class: "stream", role: "log", "aria-label": "Live log", tabindex: "0" }, lines);
  const streamState = el("span", { class: "info", role: "status" }, "Connecting…");
  const pause = el("button", { type: "button", class: "secondary", "aria-pressed": "false" }, "Pause");
  const clear = el("button", { type: "button", class: "secondary" }, "Clear");
  let source: EventSource | null = null;
  let paused = false;
  let held: LogLine[] = [];
  let pending: LogLine[] = [];
  let scheduled = false;
  const seen = new Set<number>();
  const flush = () => {
    scheduled = false;
    const batch = pending;
    pending = [];
    for (const line of batch) lines.append(logItem(line, true));
    while (lines.childElementCount > MAX_LINES) lines.firstElementChild?.remove();
    if (!paused) scroller.scrollTop = scroller.scrollHeight;
  };
  const add = (line: LogLine) => {
    if (seen.has(line.seq)) return;
    seen.add(line.seq);
    if (seen.size > 4 * MAX_LINES) seen.delete(seen.values().next().value as number);
    if (paused) {
      held.push(line);
      if (held.length > MAX_LINES) held.shift();
      pause.textContent = `Resume (${held.length} new)`;
      return;
    }
    pending.push(line);
    if (!scheduled) {
      scheduled = true;
      requestAnimationFrame(flush);
    }
  };
  const connect = () => {
    source?.close();
    lines.replaceChildren();
    seen.clear();
    held = [];
    pending = [];
    const q = only();
    streamState.textContent = "Connecting…";
    const s = new EventSource(appPath(app, `/logs/stream${q ? `?${q}` : ""}`));
    source = s;
    s.addEventListener("open", () => {
      streamState.textContent = "Live";
    });
    s.addEventListener("log", (ev) => {
      try {
        add(JSON.parse((ev as MessageEvent<string>).data) as LogLine);
      } catch {
        // A line that is not JSON is not a log line.
      }
    });
    s.addEventListener("error", () => {
      if (s.readyState === EventSource.CLOSED) {
        const again = el("button", { type: "button", class: "link" }, "Reconnect");
        again.addEventListener("click", connect);
        streamState.replaceChildren("Disconnected. ", again);
      } else {
        streamState.textContent = "Reconnecting…";
      }
    });
  };
  onLeave(() => source?.close());
  pause.addEventListener("click", () => {
    paused = !paused;
    pause.setAttribute("aria-pressed", String(paused));
    pause.textContent = paused ? "Resume" : "Pause";
    if (!paused) {
      pending.push(...held);
      held = [];
      flush();
    }
  });
  clear.addEventListener("click", () => {
    lines.replaceChildren();
    held = [];
    if (paused) pause.textContent = "Resume";
  });

  // The invocation history.
  const status = select("m-status", [["", "Any status"], ["ok", "ok"], ["failed", "failed"]]);
  const triggers = [...new Set(["httpTrigger", "timerTrigger", "queueTrigger", ...functions.map((f) => f.trigger)])];
  const trigger = select("m-trigger", [["", "Any trigger"], ...triggers.map((t): [string, string] => [t, t])]);
  const refresh = el("button", { type: "button", class: "secondary" }, "Refresh");
  const historyBar = el(
    "form",
    { class: "filters", "aria-label": "Filter invocations" },
    el("label", { for: "m-status" }, "Status"),
    status,
    el("label", { for: "m-trigger" }, "Trigger"),
    trigger,
    refresh,
  );
  historyBar.addEventListener("submit", (ev) => ev.preventDefault());
  const body = el("tbody", {});
  const table = el(
    "table",
    { "aria-label": "Invocations", class: "invocations" },
    el(
      "thead",
      {},
      el("tr", {}, ...["Start", "Function", "Trigger", "Status", "Duration", "Worker", "Version", "Error"].map((h) => el("th", { scope: "col" }, h))),
    ),
    body,
  );
  const historyStatus = el("div", {});
  const older = el("button", { type: "button", class: "secondary", hidden: "" }, "Load older");
  const detail = el("div", { "aria-live": "polite" });
  const detailSection = el(
    "section",
    { class: "invocation", "aria-labelledby": "invocation-details", hidden: "" },
    el("h3", { id: "invocation-details" }, "Invocation details"),
    detail,
  );
  let rows: Invocation[] = [];
  let selected: string | null = null;

  const openDetail = async (inv: Invocation) => {
    selected = inv.id;
    for (const tr of body.querySelectorAll("tr")) tr.classList.toggle("selected", tr.dataset.id === inv.id);
    detailSection.hidden = false;
    detail.replaceChildren(message("Loading…", "info"));
    try {
      const d = await call<InvocationDetail>("GET", appPath(app, `/invocations/${encodeURIComponent(inv.id)}`));
      if (selected !== inv.id) return;
      detail.replaceChildren(el("p", { class: "secret" }, `Invocation ${d.id}`), ...details(d, "Log of the invocation"));
    } catch (e) {
      detail.replaceChildren(message(e instanceof Error ? e.message : String(e)));
    }
  };
  const row = (inv: Invocation) => {
    const when = clock(inv.start);
    const open = el("button", { type: "button", class: "link", "aria-label": `Details of ${inv.function} at ${when}` }, when);
    open.addEventListener("click", () => void openDetail(inv));
    const tr = el(
      "tr",
      { "data-id": inv.id, class: inv.id === selected ? "selected" : "" },
      el("td", {}, open),
      el("td", {}, inv.function),
      el("td", {}, inv.trigger),
      el("td", {}, el("span", { class: inv.status === "ok" ? "ok" : "error" }, inv.status)),
      el("td", { class: "num" }, duration(inv.durationMs)),
      el("td", {}, inv.worker ?? ""),
      el("td", {}, inv.version == null ? "" : String(inv.version)),
      el("td", {}, inv.error ? el("span", { class: "error-text" }, inv.error.split("\n")[0]!.slice(0, 120)) : ""),
    );
    return tr;
  };
  let historyBusy = false;
  const loadHistory = async (more: boolean) => {
    if (historyBusy) return;
    historyBusy = true;
    try {
      const q = new URLSearchParams({ limit: String(PAGE) });
      if (fn.value) q.set("function", fn.value);
      if (status.value) q.set("status", status.value);
      if (trigger.value) q.set("trigger", trigger.value);
      const last = rows[rows.length - 1];
      if (more && last) {
        q.set("before", String(last.start));
        q.set("beforeId", last.id);
      }
      const page = await call<InvocationPage>("GET", appPath(app, `/invocations?${q}`));
      if (more) {
        const known = new Set(rows.map((r) => r.id));
        rows = rows.concat(page.invocations.filter((i) => !known.has(i.id)));
      } else {
        rows = page.invocations;
      }
      body.replaceChildren(...rows.map(row));
      older.hidden = page.invocations.length < PAGE;
      historyStatus.replaceChildren(
        rows.length ? "" : message("No invocations recorded.", "info"),
        page.sampled ? message("Busy: some invocations were not recorded one by one.", "info") : "",
      );
    } catch (e) {
      historyStatus.replaceChildren(message(e instanceof Error ? e.message : String(e)));
    } finally {
      historyBusy = false;
    }
  };
  for (const s of [status, trigger]) s.addEventListener("change", () => void loadHistory(false));
  refresh.addEventListener("click", () => void loadHistory(false));
  older.addEventListener("click", () => void loadHistory(true));

  fn.addEventListener("change", () => {
    void loadStats();
    connect();
    void loadHistory(false);
  });

  show(
    el("p", {}, el("a", { href: `#/apps/${encodeURIComponent(app)}` }, `← ${app}`)),
    el("h1", {}, "Monitor"),
    filterBar,
    el("section", { "aria-labelledby": "m-charts" }, el("h2", { id: "m-charts" }, "Last 60 minutes"), totals, charts),
    el(
      "section",
      { "aria-labelledby": "m-live" },
      el("h2", { id: "m-live" }, "Live log"),
      el("div", { class: "actions" }, pause, clear, streamState),
      scroller,
    ),
    el(
      "section",
      { "aria-labelledby": "m-history" },
      el("h2", { id: "m-history" }, "Invocations"),
      historyBar,
      historyStatus,
      el("div", { class: "scroll-x" }, table),
      older,
      detailSection,
    ),
  );
  connect();
  every(10_000, () => void loadStats());
  await Promise.all([loadStats(), loadHistory(false)]);
}
