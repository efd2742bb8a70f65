// The cluster: every worker with its capacity, load, labels, window, heartbeat age, how it
// isolates function processes, and the apps placed on it; drain and remove.
import { call } from "./api";
import type { Worker } from "./api";
import { el, message } from "./dom";

/** A worker not heard from for this long shows as lost (the management role's default). */
const LOST_MS = 6_000;

function state(w: Worker): string {
  if (w.heartbeatAgeMs > LOST_MS) return "lost";
  return w.draining ? "draining" : "alive";
}

/** The worker's isolation: its mode, and each layer that is off with the reason. */
function isolation(w: Worker): string {
  const i = w.isolation;
  if (!i) return "unknown";
  if (i.mode === "off") return "off";
  const off = [
    ["namespaces", i.namespaces],
    ["app users", i.appUsers],
    ["limits", i.limits],
  ].filter(([, v]) => v.startsWith("off"));
  if (!off.length) return `${i.mode}: complete (${i.limits})`;
  return `${i.mode}: ${off.map(([k, v]) => `${k} ${v}`).join("; ")}`;
}

export async function clusterView(show: (...nodes: Node[]) => void): Promise<void> {
  const workers = await call<Worker[]>("GET", "/api/workers");
  const status = el("div", { class: "status" });
  const act = async (what: () => Promise<unknown>) => {
    status.replaceChildren();
    try {
      await what();
      await clusterView(show);
    } catch (e) {
      status.replaceChildren(message(e instanceof Error ? e.message : String(e)));
    }
  };
  const rows = workers.map((w) => {
    const drain = el("button", { type: "button", class: "link", "aria-label": `Drain ${w.name}` }, "Drain");
    drain.addEventListener("click", () => void act(() => call("POST", `/api/workers/${encodeURIComponent(w.id)}/drain`)));
    const remove = el("button", { type: "button", class: "link", "aria-label": `Remove ${w.name}` }, "Remove");
    remove.addEventListener("click", () => {
      if (confirm(`Remove worker ${w.name}? Its apps move elsewhere.`)) {
        void act(() => call("DELETE", `/api/workers/${encodeURIComponent(w.id)}`));
      }
    });
    const mib = (b: number | null | undefined) => (b == null ? "?" : `${Math.round(b / 1048576)}`);
    const apps = [
      ...new Set(
        w.apps.map((a) => {
          const u = a.usage;
          const used = u ? ` ${mib(u.memoryBytes)}/${mib(u.memoryLimitBytes)} MiB${u.oomKills ? `, ${u.oomKills} killed for memory` : ""}` : "";
          return `${a.app} v${a.version ?? "?"}${a.ready ? "" : " (starting)"}${used}`;
        }),
      ),
    ];
    const load = w.load?.loadAverage1m;
    const free = w.load?.memoryAvailableMib;
    return el(
      "tr",
      {},
      el("th", { scope: "row" }, w.name),
      el("td", {}, state(w)),
      el("td", {}, `${(w.heartbeatAgeMs / 1000).toFixed(1)} s`),
      el("td", {}, `${w.cpuMillis / 1000} cores, ${w.memoryMib} MiB, ${w.maxApps} apps`),
      el("td", {}, load == null ? "" : `${load.toFixed(2)}${free == null ? "" : `, ${free} MiB free`}`),
      el("td", {}, Object.entries(w.labels).map(([k, v]) => `${k}=${v}`).join(", ")),
      el("td", {}, w.window ?? "always"),
      el("td", {}, isolation(w)),
      el("td", {}, apps.join(", ")),
      el("td", {}, w.draining ? "" : drain, " ", remove),
    );
  });
  const head = ["Worker", "State", "Heartbeat", "Capacity", "Load", "Labels", "Window", "Isolation", "Apps", ""];
  show(
    el("h1", {}, "Cluster"),
    status,
    workers.length
      ? el(
          "table",
          { "aria-label": "Workers" },
          el("thead", {}, el("tr", {}, ...head.map((h) => el("th", { scope: "col" }, h)))),
          el("tbody", {}, ...rows),
        )
      : message("No workers have joined: start one with `stratus worker --join URL --token TOKEN`.", "info"),
  );
}
