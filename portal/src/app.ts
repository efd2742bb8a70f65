// An app's page: its live version and replicas, links to its code and monitor, deployments
// with their logs and rollback, the publish profile, settings and keys (values masked until
// revealed).
import { call, callText, STATUS_NAMES } from "./api";
import type { App, Deployment, DeploymentDetail } from "./api";
import { el, message } from "./dom";
import { testPanel } from "./test-panel";

interface Keys {
  master: string | null;
  functionKeys: { name: string; value: string }[];
  systemKeys: { name: string; value: string }[];
  functions: Record<string, { name: string; value: string }[]>;
}

interface FunctionInfo {
  name: string;
  trigger: string;
  authLevel: string;
  url: string | null;
  route: string | null;
  methods: string[] | null;
  disabled: boolean;
}

interface Functions {
  source: string;
  note?: string;
  routePrefix?: string;
  functions: FunctionInfo[];
}

const MASK = "••••••••";

/** A status line and a way to run an action that reloads the page when it worked and says
 * why in the status line when it did not. */
function acting(reload: () => void): [HTMLElement, (what: () => Promise<unknown>) => Promise<void>] {
  const status = el("div", { class: "status" });
  const act = async (what: () => Promise<unknown>) => {
    status.replaceChildren();
    try {
      await what();
      reload();
    } catch (e) {
      status.replaceChildren(message(e instanceof Error ? e.message : String(e)));
    }
  };
  return [status, act];
}

function time(ms: number | null): string {
  return ms ? new Date(ms).toLocaleString() : "";
}

/** A secret shown masked, with a button that reveals it (and hides it again). */
function secret(label: string, value: string): HTMLElement {
  const shown = el("code", { class: "secret", "aria-label": `${label} value` }, MASK);
  const toggle = el("button", { type: "button", class: "link", "aria-label": `Reveal ${label}` }, "Reveal");
  toggle.addEventListener("click", () => {
    const hidden = shown.textContent === MASK;
    shown.textContent = hidden ? value : MASK;
    toggle.textContent = hidden ? "Hide" : "Reveal";
    toggle.setAttribute("aria-label", `${hidden ? "Hide" : "Reveal"} ${label}`);
  });
  const copy = el("button", { type: "button", class: "link", "aria-label": `Copy ${label}` }, "Copy");
  copy.addEventListener("click", () => {
    void navigator.clipboard.writeText(value).then(
      () => (copy.textContent = "Copied"),
      () => (copy.textContent = "Copy failed"),
    );
    setTimeout(() => (copy.textContent = "Copy"), 2000);
  });
  return el("span", { class: "secret-row" }, shown, " ", toggle, " ", copy);
}

function table(label: string, head: string[], rows: HTMLElement[]): HTMLElement {
  return el(
    "table",
    { "aria-label": label },
    el("thead", {}, el("tr", {}, ...head.map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, ...rows),
  );
}

function deploymentsSection(name: string, list: Deployment[], reload: () => void): HTMLElement {
  const base = `/api/apps/${encodeURIComponent(name)}`;
  const rows = list.map((d) => {
    const logCell = el("td", {});
    const open = el("button", { type: "button", class: "link", "aria-label": `Log of deployment ${d.id}` }, "Log");
    open.addEventListener("click", async () => {
      const detail = await call<DeploymentDetail>("GET", `${base}/deployments/${encodeURIComponent(d.id)}`);
      logCell.replaceChildren(
        el(
          "ol",
          { class: "log", "aria-label": `Log of deployment ${d.id}` },
          ...detail.log.map((e) => el("li", { class: ["info", "warning", "error"][e.type] ?? "info" }, e.message)),
        ),
      );
    });
    logCell.append(open);
    return el(
      "tr",
      {},
      el("td", {}, time(d.received)),
      el("td", { class: `status-${d.status}` }, STATUS_NAMES[d.status] ?? String(d.status)),
      el("td", {}, d.version === null ? "" : String(d.version)),
      el("td", {}, d.deployer),
      logCell,
    );
  });
  const rollback = el("button", { type: "button" }, "Roll back to the previous version");
  // A new publishing password: profiles downloaded before stop working.
  const rotate = el("button", { type: "button", class: "link" }, "New publishing password");
  rotate.addEventListener("click", async () => {
    if (!confirm(`Make a new publishing password for ${name}? Publish profiles downloaded before stop working.`)) return;
    status.replaceChildren();
    try {
      const c = await call<{ userName: string; password: string }>("POST", `${base}/publishing/rotate`);
      status.replaceChildren(
        el("p", { class: "info", role: "status" }, `New credential for ${c.userName}: `, secret("publishing password", c.password), " (download the profile again)"),
      );
    } catch (e) {
      status.replaceChildren(message(e instanceof Error ? e.message : String(e)));
    }
  });
  const status = el("div", { class: "status" });
  rollback.addEventListener("click", async () => {
    if (!confirm(`Roll ${name} back to the version live before this one?`)) return;
    status.replaceChildren();
    try {
      await call("POST", `${base}/rollback`);
      reload();
    } catch (e) {
      status.replaceChildren(message(e instanceof Error ? e.message : String(e)));
    }
  });
  return el(
    "section",
    { "aria-labelledby": "deployments" },
    el("h2", { id: "deployments" }, "Deployments"),
    el(
      "p",
      { class: "actions" },
      rollback,
      " ",
      el("a", { href: `${base}/publishprofile`, download: `${name}.PublishSettings` }, "Download publish profile"),
      " ",
      rotate,
    ),
    status,
    list.length ? table("Deployments", ["Received", "Status", "Version", "Deployer", ""], rows) : message("No deployments yet.", "info"),
  );
}

function settingsSection(app: string, settings: Record<string, string>, reload: () => void): HTMLElement {
  const base = `/api/apps/${encodeURIComponent(app)}/settings`;
  const [status, act] = acting(reload);
  const names = Object.keys(settings).sort();
  const rows = names.map((k) => {
    const del = el("button", { type: "button", class: "link", "aria-label": `Delete setting ${k}` }, "Delete");
    del.addEventListener("click", () => {
      if (confirm(`Delete the setting ${k}?`)) void act(() => call("DELETE", `${base}/${encodeURIComponent(k)}`));
    });
    return el("tr", {}, el("th", { scope: "row" }, k), el("td", {}, secret(k, settings[k] ?? "")), el("td", {}, del));
  });
  const form = el("form", { class: "inline", "aria-label": "Set a setting" });
  const name = el("input", { name: "name", "aria-label": "Setting name", placeholder: "NAME", required: "" });
  const value = el("input", { name: "value", "aria-label": "Setting value", placeholder: "value", type: "password", autocomplete: "off" });
  form.append(name, value, el("button", { type: "submit" }, "Set"));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    void act(() => callText("PUT", `${base}/${encodeURIComponent(name.value)}`, value.value));
  });
  return el(
    "section",
    { "aria-labelledby": "settings" },
    el("h2", { id: "settings" }, "Settings"),
    form,
    status,
    names.length ? table("Settings", ["Name", "Value", ""], rows) : message("No settings.", "info"),
  );
}

function keysSection(name: string, keys: Keys, reload: () => void): HTMLElement {
  const base = `/api/apps/${encodeURIComponent(name)}/keys`;
  const [status, act] = acting(reload);
  const rows: HTMLElement[] = [];
  const row = (scope: string, label: string, keyName: string, value: string, path: string, deletable: boolean) => {
    const renew = el("button", { type: "button", class: "link", "aria-label": `Renew ${label} key ${keyName}` }, "Renew");
    renew.addEventListener("click", () => {
      if (confirm(`Renew the ${label} key ${keyName}? The current value stops working.`)) {
        void act(() => call("PUT", `${base}/${path}`, { value: null }));
      }
    });
    const actions = el("td", {}, renew);
    if (deletable) {
      const del = el("button", { type: "button", class: "link", "aria-label": `Delete ${label} key ${keyName}` }, "Delete");
      del.addEventListener("click", () => {
        if (confirm(`Delete the ${label} key ${keyName}?`)) void act(() => call("DELETE", `${base}/${path}`));
      });
      actions.append(" ", del);
    }
    rows.push(el("tr", {}, el("td", {}, scope), el("th", { scope: "row" }, keyName), el("td", {}, secret(`${label} key ${keyName}`, value)), actions));
  };
  const enc = encodeURIComponent;
  if (keys.master) row("master", "master", "_master", keys.master, "master", false);
  for (const k of keys.functionKeys) row("host", "host", k.name, k.value, `host/${enc(k.name)}`, true);
  for (const k of keys.systemKeys) row("system", "system", k.name, k.value, `system/${enc(k.name)}`, true);
  for (const [f, list] of Object.entries(keys.functions)) {
    for (const k of list) row(`function ${f}`, `function ${f}`, k.name, k.value, `functions/${enc(f)}/${enc(k.name)}`, true);
  }
  // A new key: a host key (any function), a system key, or one function's key.
  const add = el("form", { class: "inline", "aria-label": "New key" });
  const scope = el("select", { name: "scope", "aria-label": "New key scope" });
  scope.append(el("option", { value: "host" }, "host"), el("option", { value: "system" }, "system"));
  for (const f of Object.keys(keys.functions)) scope.append(el("option", { value: `functions/${enc(f)}` }, `function ${f}`));
  const input = el("input", { name: "key", "aria-label": "New host key name", placeholder: "key name", required: "" });
  add.append(scope, input, el("button", { type: "submit" }, "New key"));
  scope.addEventListener("change", () => input.setAttribute("aria-label", `New ${scope.selectedOptions[0]?.textContent ?? ""} key name`));
  add.addEventListener("submit", (ev) => {
    ev.preventDefault();
    void act(() => call("PUT", `${base}/${scope.value}/${enc(input.value)}`, { value: null }));
  });
  return el(
    "section",
    { "aria-labelledby": "keys" },
    el("h2", { id: "keys" }, "Keys"),
    add,
    status,
    rows.length ? table("Keys", ["Scope", "Name", "Value", ""], rows) : message("No keys yet: they are made when the app first runs.", "info"),
  );
}

function functionsSection(app: string, list: Functions, keys: Keys, reload: () => void): HTMLElement {
  const status = el("div", { class: "status" });
  const hostKey = keys.functionKeys.find((k) => k.name === "default")?.value ?? keys.functionKeys[0]?.value;
  const rows = list.functions.map((f) => {
    const enabled = el("input", { type: "checkbox", "aria-label": `${f.name} enabled` });
    enabled.checked = !f.disabled;
    enabled.addEventListener("change", async () => {
      status.replaceChildren();
      const setting = `/api/apps/${encodeURIComponent(app)}/settings/${encodeURIComponent(`AzureWebJobs.${f.name}.Disabled`)}`;
      try {
        if (enabled.checked) await call("DELETE", setting);
        else await callText("PUT", setting, "true");
        status.replaceChildren(
          message(`${f.name} ${enabled.checked ? "enabled" : "disabled"}: the app's hosts start again with the change.`, "info"),
        );
      } catch (e) {
        enabled.checked = !enabled.checked;
        status.replaceChildren(message(e instanceof Error ? e.message : String(e)));
      }
    });
    const urlCell = el("td", {});
    if (f.url) {
      const key = f.authLevel === "admin" ? keys.master : f.authLevel === "anonymous" ? null : hostKey;
      const full = key ? `${f.url}?code=${encodeURIComponent(key)}` : f.url;
      const copy = el("button", { type: "button", class: "link", "aria-label": `Copy the URL of ${f.name}` }, "Copy");
      copy.addEventListener("click", async () => {
        await navigator.clipboard.writeText(full);
        copy.textContent = "Copied";
      });
      urlCell.append(el("code", {}, f.url), " ", copy);
    }
    return el(
      "tr",
      {},
      el("th", { scope: "row" }, f.name),
      el("td", {}, f.trigger),
      el("td", {}, f.authLevel),
      urlCell,
      el("td", {}, enabled),
    );
  });
  void reload;
  return el(
    "section",
    { "aria-labelledby": "functions" },
    el("h2", { id: "functions" }, "Functions"),
    status,
    list.source === "package" ? message(`Read from the package (${list.note ?? "no replica ready"}).`, "info") : "",
    rows.length ? table("Functions", ["Function", "Trigger", "Auth", "URL", "Enabled"], rows) : message("No functions.", "info"),
  );
}

/** The page of app `name`. */
export async function appView(name: string, show: (...nodes: Node[]) => void): Promise<void> {
  const base = `/api/apps/${encodeURIComponent(name)}`;
  const [app, deployments, settings, keys, functions] = await Promise.all([
    call<App>("GET", base),
    call<Deployment[]>("GET", `${base}/deployments`),
    call<Record<string, string>>("GET", `${base}/settings`),
    call<Keys>("GET", `${base}/keys`),
    call<Functions>("GET", `${base}/functions`),
  ]);
  const reload = () => void appView(name, show);
  const remove = el("button", { type: "button", class: "danger" }, `Delete ${app.name}`);
  remove.addEventListener("click", async () => {
    if (!confirm(`Delete ${app.name} with its settings, versions, keys and queues?`)) return;
    await call("DELETE", base);
    location.hash = "#/apps";
  });
  show(
    el("p", {}, el("a", { href: "#/apps" }, "← Apps")),
    el("h1", {}, app.name),
    el(
      "p",
      {},
      `Live version: ${app.activeVersion ?? "none"} · replicas: ${app.minReplicas === app.maxReplicas ? app.minReplicas : `${app.minReplicas}–${app.maxReplicas}`}`,
    ),
    el(
      "nav",
      { class: "actions", "aria-label": `${app.name} sections` },
      el("a", { href: `#/apps/${encodeURIComponent(name)}/code` }, "Code"),
      el("a", { href: `#/apps/${encodeURIComponent(name)}/monitor` }, "Monitor"),
    ),
    functionsSection(name, functions, keys, reload),
    testPanel(name, functions.functions, functions.routePrefix ?? "api", {
      host: keys.functionKeys.find((k) => k.name === "default")?.value,
      master: keys.master,
      functions: keys.functions,
    }),
    deploymentsSection(name, deployments, reload),
    settingsSection(name, settings, reload),
    keysSection(name, keys, reload),
    el("section", { "aria-label": "Danger zone" }, remove),
  );
}
