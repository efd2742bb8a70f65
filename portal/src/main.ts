// The portal's shell: who is signed in, the views by hash route (#/sign-in, #/apps,
// #/apps/{app}, its /code and /monitor, #/cluster), and the first-run bootstrap
// (#/bootstrap?token=...).
import "./style.css";
import { ApiError, call, setCsrf, STATUS_NAMES } from "./api";
import type { App, Deployment, SessionInfo } from "./api";
import { appView } from "./app";
import { clusterView } from "./cluster";
import { el, message } from "./dom";
import { leaveView } from "./lifecycle";
import { monitorView } from "./monitor";
import { codeView } from "./workspace";

const view = document.getElementById("view") as HTMLElement;
const who = document.getElementById("who") as HTMLElement;
const signOut = document.getElementById("sign-out") as HTMLButtonElement;
const nav = document.getElementById("nav") as HTMLElement;

let session: SessionInfo | null = null;

function show(...nodes: Node[]): void {
  view.replaceChildren(...nodes);
  view.focus();
}

function setSession(s: SessionInfo | null): void {
  session = s;
  setCsrf(s?.csrf ?? null);
  who.textContent = s ? s.user : "";
  signOut.hidden = !s;
  nav.hidden = !s;
}

function form(
  title: string,
  fields: { name: string; label: string; type: string; autocomplete: string }[],
  submit: string,
  onSubmit: (values: Record<string, string>) => Promise<void>,
): HTMLElement {
  const f = el("form", { class: "card", "aria-label": title });
  f.append(el("h1", {}, title));
  for (const field of fields) {
    const id = `f-${field.name}`;
    f.append(
      el("label", { for: id }, field.label),
      el("input", { id, name: field.name, type: field.type, autocomplete: field.autocomplete, required: "" }),
    );
  }
  const status = el("div", { class: "status" });
  f.append(el("button", { type: "submit" }, submit), status);
  f.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const data = new FormData(f);
    const values: Record<string, string> = {};
    for (const field of fields) values[field.name] = String(data.get(field.name) ?? "");
    status.replaceChildren();
    try {
      await onSubmit(values);
    } catch (e) {
      status.replaceChildren(message(e instanceof Error ? e.message : String(e)));
    }
  });
  return f;
}

function signInView(): void {
  show(
    form(
      "Sign in",
      [
        { name: "user", label: "User", type: "text", autocomplete: "username" },
        { name: "password", label: "Password", type: "password", autocomplete: "current-password" },
      ],
      "Sign in",
      async (v) => {
        try {
          setSession(await call<SessionInfo>("POST", "/api/portal/login", v));
        } catch (e) {
          if (e instanceof ApiError && e.status === 401) throw new Error("Wrong user or password.");
          throw e;
        }
        location.hash = "#/apps";
      },
    ),
  );
}

function bootstrapView(token: string): void {
  show(
    form(
      "Create the first administrator",
      [
        { name: "user", label: "User", type: "text", autocomplete: "username" },
        { name: "password", label: "Password (12 characters or more)", type: "password", autocomplete: "new-password" },
      ],
      "Create and sign in",
      async (v) => {
        setSession(await call<SessionInfo>("POST", "/api/portal/bootstrap", { token, ...v }));
        location.hash = "#/apps";
      },
    ),
  );
}

function time(ms: number | null): string {
  return ms ? new Date(ms).toLocaleString() : "";
}

function count(n: number | undefined): string {
  if (n === undefined || n === null) return "";
  return Number.isInteger(n) ? String(n) : n.toFixed(1);
}

async function appsView(): Promise<void> {
  const apps = await call<App[]>("GET", "/api/apps");
  const rows = await Promise.all(
    apps.map(async (a) => {
      const deployments = await call<Deployment[]>("GET", `/api/apps/${encodeURIComponent(a.name)}/deployments`);
      const last = deployments[0];
      return el(
        "tr",
        {},
        el("th", { scope: "row" }, el("a", { href: `#/apps/${encodeURIComponent(a.name)}` }, a.name)),
        el("td", {}, a.activeVersion === null ? "none" : String(a.activeVersion)),
        el("td", {}, a.minReplicas === a.maxReplicas ? String(a.minReplicas) : `${a.minReplicas}–${a.maxReplicas}`),
        el("td", { class: "num" }, count(a.replicasReady)),
        el("td", { class: "num" }, count(a.invocationsPerMinute)),
        el("td", { class: "num" }, el("span", { class: (a.errorsPerMinute ?? 0) > 0 ? "error" : "" }, count(a.errorsPerMinute))),
        el(
          "td",
          {},
          last ? `${STATUS_NAMES[last.status] ?? last.status} (${last.deployer}, ${time(last.end ?? last.received)})` : "",
        ),
      );
    }),
  );
  const table = el(
    "table",
    { "aria-label": "Apps", class: "apps" },
    el(
      "thead",
      {},
      el(
        "tr",
        {},
        ...["App", "Live version", "Replicas", "Ready", "Invocations/min", "Errors/min", "Last deployment"].map((h) => el("th", { scope: "col" }, h)),
      ),
    ),
    el("tbody", {}, ...rows),
  );
  const create = el("form", { class: "inline", "aria-label": "New app" });
  const name = el("input", { name: "name", "aria-label": "New app name", placeholder: "app name", required: "", pattern: "[a-z0-9]([a-z0-9\\-]{0,58}[a-z0-9])?", title: "2 to 60 lower-case letters, digits and hyphens" });
  const replicas = el("input", { name: "replicas", "aria-label": "Replicas", type: "number", min: "1", value: "1", class: "narrow" });
  const status = el("div", { class: "status" });
  create.append(name, replicas, el("button", { type: "submit" }, "New app"));
  create.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    status.replaceChildren();
    const n = Number(replicas.value) || 1;
    try {
      await call("PUT", `/api/apps/${encodeURIComponent(name.value)}`, { minReplicas: n, maxReplicas: n });
      location.hash = `#/apps/${encodeURIComponent(name.value)}`;
    } catch (e) {
      status.replaceChildren(message(e instanceof Error ? e.message : String(e)));
    }
  });
  show(el("h1", {}, "Apps"), create, status, apps.length ? table : message("No apps yet.", "info"));
}

async function route(): Promise<void> {
  leaveView();
  const hash = location.hash || "#/apps";
  const [path, query] = hash.slice(1).split("?");
  if (path === "/bootstrap") {
    bootstrapView(new URLSearchParams(query ?? "").get("token") ?? "");
    return;
  }
  if (!session) {
    try {
      setSession(await call<SessionInfo>("GET", "/api/portal/session"));
    } catch {
      setSession(null);
    }
  }
  if (!session || path === "/sign-in") {
    signInView();
    return;
  }
  try {
    const app = path?.match(/^\/apps\/([^/]+)(?:\/(code|monitor))?$/);
    if (app?.[1] && app[2] === "code") {
      await codeView(decodeURIComponent(app[1]), show, new URLSearchParams(query ?? "").get("file") ?? undefined);
    } else if (app?.[1] && app[2] === "monitor") {
      await monitorView(decodeURIComponent(app[1]), show);
    } else if (app?.[1]) {
      await appView(decodeURIComponent(app[1]), show);
    } else if (path === "/cluster") {
      await clusterView(show);
    } else {
      await appsView();
    }
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) {
      setSession(null);
      signInView();
    } else {
      show(message(e instanceof Error ? e.message : String(e)));
    }
  }
}

signOut.addEventListener("click", async () => {
  try {
    await call("POST", "/api/portal/logout");
  } finally {
    setSession(null);
    location.hash = "#/sign-in";
    await route();
  }
});
window.addEventListener("hashchange", () => void route());
void route();
