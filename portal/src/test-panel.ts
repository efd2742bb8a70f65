// The test panel: an HTTP request to one of the app's functions (method, path, query,
// headers, body, key), or an input for another trigger through the admin invoke, sent by
// the management role to a ready replica; the status, headers, body and duration shown, then
// the log lines of the invocation the request caused.
import { call } from "./api";
import { el, message } from "./dom";
import { followInvocation } from "./invocations";

export interface TestFunction {
  name: string;
  trigger: string;
  authLevel: string;
  route: string | null;
  methods: string[] | null;
}

interface TestAnswer {
  status: number;
  headers: [string, string][];
  body: string;
  bodyEncoding: string;
  durationMs: number;
  invocationId?: string | null;
}

function field(label: string, input: HTMLElement): HTMLElement {
  const id = `t-${label.toLowerCase().replace(/\W+/g, "-")}`;
  input.id = id;
  return el("div", { class: "field" }, el("label", { for: id }, label), input);
}

export function testPanel(
  app: string,
  functions: TestFunction[],
  routePrefix: string,
  keys: { host?: string; master?: string | null; functions?: Record<string, { name: string; value: string }[]> },
): HTMLElement {
  const pick = el("select", {});
  for (const f of functions) pick.append(el("option", { value: f.name }, `${f.name} (${f.trigger})`));
  const method = el("select", {});
  for (const m of ["GET", "POST", "PUT", "PATCH", "DELETE"]) method.append(el("option", { value: m }, m));
  const path = el("input", { type: "text", spellcheck: "false" });
  const query = el("input", { type: "text", placeholder: "name=Ada", spellcheck: "false" });
  const headers = el("textarea", { rows: "2", placeholder: "Content-Type: application/json", spellcheck: "false" });
  const body = el("textarea", { rows: "4", spellcheck: "false" });
  const key = el("select", {});
  const result = el("div", { class: "result", "aria-live": "polite" });
  const current = () => functions.find((f) => f.name === pick.value);
  // The keys that open the function picked: none, its own keys, the host's default, the master.
  const keyOptions = (f: TestFunction) => {
    key.replaceChildren(el("option", { value: "" }, "no key"));
    for (const k of keys.functions?.[f.name] ?? []) key.append(el("option", { value: `function:${k.name}` }, `function key ${k.name}`));
    if (keys.host) key.append(el("option", { value: "host" }, "host key default"));
    if (keys.master) key.append(el("option", { value: "master" }, "master key"));
  };
  const keyValue = (f: TestFunction): string | null | undefined => {
    if (key.value === "host") return keys.host;
    if (key.value === "master") return keys.master;
    if (key.value.startsWith("function:")) {
      const name = key.value.slice("function:".length);
      return keys.functions?.[f.name]?.find((k) => k.name === name)?.value;
    }
    return null;
  };
  const fill = () => {
    const f = current();
    if (!f) return;
    keyOptions(f);
    const http = f.trigger.toLowerCase() === "httptrigger";
    method.disabled = !http;
    query.disabled = !http;
    if (http) {
      const route = (f.route ?? f.name).replace(/\{(\*?)([^}:=?]+)[^}]*\}/g, "$2");
      path.value = `/${[routePrefix, route].filter(Boolean).join("/")}`;
      method.value = f.methods?.[0]?.toUpperCase() ?? "GET";
      key.value = f.authLevel === "admin" ? "master" : f.authLevel === "anonymous" ? "" : keys.host ? "host" : "";
    } else {
      path.value = `/admin/functions/${f.name}`;
      method.value = "POST";
      body.value = body.value || "";
      key.value = "master";
    }
  };
  pick.addEventListener("change", fill);
  const send = el("button", { type: "submit" }, "Send");
  const form = el("form", { class: "panel", "aria-label": "Test a function" });
  form.append(
    field("Function", pick),
    field("Method", method),
    field("Path", path),
    field("Query", query),
    field("Headers", headers),
    field("Body", body),
    field("Key", key),
    send,
    result,
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = current();
    if (!f) return;
    const http = f.trigger.toLowerCase() === "httptrigger";
    const hs: Record<string, string> = {};
    for (const line of headers.value.split("\n")) {
      const at = line.indexOf(":");
      if (at > 0) hs[line.slice(0, at).trim()] = line.slice(at + 1).trim();
    }
    const k = keyValue(f);
    if (k) hs["x-functions-key"] = k;
    let payload = body.value;
    if (!http) {
      hs["Content-Type"] = "application/json";
      payload = JSON.stringify({ input: body.value });
    }
    send.disabled = true;
    result.replaceChildren(el("p", { class: "info" }, "Sending…"));
    try {
      const a = await call<TestAnswer>("POST", `/api/apps/${encodeURIComponent(app)}/test`, {
        method: http ? method.value : "POST",
        path: path.value,
        query: http ? query.value : "",
        headers: hs,
        body: payload,
      });
      result.replaceChildren(
        el("p", { class: a.status < 400 ? "ok" : "error" }, `${a.status} in ${a.durationMs.toFixed(0)} ms`),
        el("pre", { class: "headers", "aria-label": "Response headers" }, a.headers.map(([h, v]) => `${h}: ${v}`).join("\n")),
        el("pre", { class: "body", "aria-label": "Response body" }, a.bodyEncoding === "base64" ? `(binary, base64) ${a.body}` : a.body),
      );
      if (a.invocationId) {
        const logs = el("div", {});
        result.append(
          el(
            "section",
            { class: "invocation", "aria-labelledby": "invocation-logs" },
            el("h3", { id: "invocation-logs" }, "Logs of this invocation"),
            logs,
          ),
        );
        void followInvocation(app, a.invocationId, logs);
      }
    } catch (e) {
      result.replaceChildren(message(e instanceof Error ? e.message : String(e)));
    } finally {
      send.disabled = false;
    }
  });
  fill();
  return el("section", { "aria-labelledby": "test" }, el("h2", { id: "test" }, "Test"), functions.length ? form : message("No functions to test.", "info"));
}
