// New functions from templates: given the app's files, the files to add or change for a
// function of one language model and trigger (pure: nothing is read or sent here).

/** The body of the Python HTTP templates (v1 and v2 alike), as the Azure templates write it. */
const PYTHON_HTTP_BODY = `    logging.info("Python HTTP trigger function processed a request.")

    name = req.params.get("name")
    if not name:
        try:
            name = req.get_json().get("name")
        except (ValueError, AttributeError):
            name = None

    if name:
        return func.HttpResponse(f"Hello, {name}. This HTTP triggered function executed successfully.")
    return func.HttpResponse(
        "This HTTP triggered function executed successfully. "
        "Pass a name in the query string or in the request body for a personalized response.",
        status_code=200,
    )
`;

export type Model = "python-v1" | "python-v2" | "javascript-v4" | "custom";
export type AuthLevel = "anonymous" | "function" | "admin";
export type Trigger =
  | { kind: "http"; authLevel: AuthLevel }
  | { kind: "timer"; schedule: string }
  | { kind: "queue"; queueName: string; connection: string };

export const MODELS: { value: Model; label: string }[] = [
  { value: "python-v1", label: "Python v1" },
  { value: "python-v2", label: "Python v2" },
  { value: "javascript-v4", label: "JavaScript v4" },
  { value: "custom", label: "Custom handler" },
];

export const DEFAULT_SCHEDULE = "0 */5 * * * *";
export const DEFAULT_CONNECTION = "AzureWebJobsStorage";

export interface FunctionSpec {
  name: string;
  model: Model;
  trigger: Trigger;
}

/** What the template looks at: every path of the app, the content of the files that
 * `filesToRead` names (those that exist), and the FUNCTIONS_WORKER_RUNTIME setting. */
export interface Existing {
  paths: string[];
  content: Record<string, string>;
  runtime: string | null;
}

export interface ChangeSet {
  files: { path: string; content: string }[];
  /** The function's main file, to open afterwards. */
  main: string;
  /** FUNCTIONS_WORKER_RUNTIME to set first (null when it is set already). */
  runtime: string | null;
  /** What the user should know (what the portal cannot do for them). */
  notes: string[];
  message: string;
}

export class TemplateError extends Error {}

const RUNTIMES: Record<Model, string> = {
  "python-v1": "python",
  "python-v2": "python",
  "javascript-v4": "node",
  custom: "custom",
};

/** Why `name` cannot name a function, or null when it can. */
export function nameProblem(name: string): string | null {
  if (!name) return "Give the function a name.";
  if (!/^[A-Za-z][A-Za-z0-9_-]*$/.test(name)) {
    return "A function name has letters, digits, _ and -, and starts with a letter.";
  }
  if (name.length > 60) return "A function name has at most 60 characters.";
  return null;
}

/** Why `name` cannot name a storage queue, or null when it can. */
export function queueProblem(name: string): string | null {
  if (!/^[a-z0-9](?:[a-z0-9]|-(?!-)){1,61}[a-z0-9]$/.test(name)) {
    return "A queue name has 3 to 63 lower-case letters, digits and single hyphens, and starts and ends with a letter or digit.";
  }
  return null;
}

/** The existing files whose content the template needs (read those that exist). */
export function filesToRead(model: Model): string[] {
  switch (model) {
    case "python-v1":
      return ["host.json", "requirements.txt"];
    case "python-v2":
      return ["host.json", "requirements.txt", "function_app.py"];
    case "javascript-v4":
      return ["host.json", "package.json"];
    case "custom":
      return ["host.json"];
  }
}

/** The change set that adds function `spec` to the app whose files are `existing`. */
export function newFunction(spec: FunctionSpec, existing: Existing): ChangeSet {
  const problem = nameProblem(spec.name);
  if (problem) throw new TemplateError(problem);
  if (spec.trigger.kind === "queue") {
    const q = queueProblem(spec.trigger.queueName);
    if (q) throw new TemplateError(q);
    if (!spec.trigger.connection) throw new TemplateError("Name the setting of the queue's connection.");
  }
  if (spec.trigger.kind === "timer" && spec.trigger.schedule.trim().split(/\s+/).length !== 6) {
    throw new TemplateError("A schedule has six fields: second minute hour day month day-of-week.");
  }
  const runtime = RUNTIMES[spec.model];
  if (existing.runtime && existing.runtime.toLowerCase() !== runtime) {
    throw new TemplateError(
      `This app's FUNCTIONS_WORKER_RUNTIME is ${existing.runtime}: one app has functions of one runtime (this template needs ${runtime}).`,
    );
  }
  const has = (path: string) => existing.paths.includes(path);
  const lower = spec.name.toLowerCase();
  const folders = new Set(
    existing.paths.filter((p) => /^[^/]+\/function\.json$/.test(p)).map((p) => p.split("/")[0]!.toLowerCase()),
  );
  if (folders.has(lower)) throw new TemplateError(`The app has a function ${spec.name} already.`);

  const files: { path: string; content: string }[] = [];
  const notes: string[] = [];
  if (!has("host.json")) files.push({ path: "host.json", content: hostJson(spec.model === "custom") });
  let main: string;
  switch (spec.model) {
    case "python-v1": {
      if (has("function_app.py")) {
        throw new TemplateError("This app uses the Python v2 model (function_app.py): choose Python v2.");
      }
      main = `${spec.name}/__init__.py`;
      files.push(
        { path: `${spec.name}/function.json`, content: functionJson(spec.trigger, "req", "$return", "__init__.py") },
        { path: main, content: pythonV1(spec.trigger) },
      );
      requirement(existing, files);
      break;
    }
    case "python-v2": {
      if (folders.size) {
        throw new TemplateError("This app has function.json folders (the Python v1 model): choose Python v1.");
      }
      main = "function_app.py";
      const current = existing.content["function_app.py"];
      const ident = pythonIdentifier(spec.name);
      if (current !== undefined && new RegExp(`^def ${ident}\\(|name="${spec.name}"`, "mi").test(current)) {
        throw new TemplateError(`function_app.py has a function ${spec.name} already.`);
      }
      const head = current === undefined ? PYTHON_V2_HEAD : current.replace(/\s*$/, "\n");
      files.push({ path: main, content: `${head}\n\n${pythonV2(spec.name, spec.trigger)}` });
      requirement(existing, files);
      break;
    }
    case "javascript-v4": {
      main = `src/functions/${spec.name}.js`;
      if (existing.paths.some((p) => p.toLowerCase() === main.toLowerCase())) {
        throw new TemplateError(`The app has ${main} already.`);
      }
      files.push({ path: main, content: javascriptV4(spec.name, spec.trigger) });
      const pkg = packageJson(existing.content["package.json"]);
      if (pkg !== null) files.push({ path: "package.json", content: pkg });
      notes.push(
        "The app needs its node_modules (with @azure/functions), which the portal cannot install: " +
          "run `npm install` in a copy of the app and publish it with `stratus publish`.",
      );
      break;
    }
    case "custom": {
      main = `${spec.name}/function.json`;
      files.push({ path: main, content: functionJson(spec.trigger, "req", "res", null) });
      const host = existing.content["host.json"];
      const handler = host === undefined ? null : customHandlerOf(host);
      if (host !== undefined && handler === null) {
        files.push({ path: "host.json", content: withCustomHandler(host) });
      }
      if (handler === null && !has("handler.py")) {
        files.push({ path: "handler.py", content: handlerPy(spec.name, spec.trigger) });
        main = "handler.py";
      } else {
        const which = handler ?? "handler.py";
        notes.push(
          `Add ${spec.name} to the app's handler (${which}): the host sends its invocations to POST /${spec.name} ` +
            `and reads {"Outputs", "Logs", "ReturnValue"} back.`,
        );
      }
      break;
    }
  }
  const kind = { http: "HTTP", timer: "timer", queue: "queue" }[spec.trigger.kind];
  const label = MODELS.find((m) => m.value === spec.model)?.label ?? spec.model;
  return {
    files,
    main,
    runtime: existing.runtime ? null : runtime,
    notes,
    message: `New ${kind} function ${spec.name} (${label})`,
  };
}

function json(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}

function hostJson(custom: boolean): string {
  const host: Record<string, unknown> = {
    version: "2.0",
    logging: { logLevel: { default: "Information" } },
    extensionBundle: { id: "Microsoft.Azure.Functions.ExtensionBundle", version: "[4.*, 5.0.0)" },
  };
  if (custom) host.customHandler = CUSTOM_HANDLER;
  return json(host);
}

const CUSTOM_HANDLER = {
  description: { defaultExecutablePath: "python3", arguments: ["handler.py"] },
  enableForwardingHttpRequest: false,
};

/** The handler host.json names ("python3 handler.py"), or null when it names none. */
function customHandlerOf(host: string): string | null {
  let parsed: { customHandler?: { description?: { defaultExecutablePath?: string; arguments?: string[] } } };
  try {
    parsed = JSON.parse(host);
  } catch {
    throw new TemplateError("host.json is not valid JSON: fix it first.");
  }
  const d = parsed.customHandler?.description;
  if (!d) return null;
  return [d.defaultExecutablePath ?? "", ...(d.arguments ?? [])].join(" ").trim() || "the handler";
}

function withCustomHandler(host: string): string {
  const parsed = JSON.parse(host) as Record<string, unknown>;
  parsed.customHandler = CUSTOM_HANDLER;
  return json(parsed);
}

/** requirements.txt with azure-functions, when it lacks it. */
function requirement(existing: Existing, files: { path: string; content: string }[]): void {
  const current = existing.content["requirements.txt"];
  if (current === undefined) {
    files.push({ path: "requirements.txt", content: "azure-functions\n" });
  } else if (!/^\s*azure-functions\b/im.test(current)) {
    files.push({ path: "requirements.txt", content: `${current.replace(/\s*$/, "\n")}azure-functions\n`.replace(/^\n/, "") });
  }
}

/** function.json for a trigger: an HTTP one with its output binding `out`. */
function functionJson(trigger: Trigger, httpIn: string, httpOut: string, scriptFile: string | null): string {
  const bindings: Record<string, unknown>[] = [];
  switch (trigger.kind) {
    case "http":
      bindings.push(
        { authLevel: trigger.authLevel, type: "httpTrigger", direction: "in", name: httpIn, methods: ["get", "post"] },
        { type: "http", direction: "out", name: httpOut },
      );
      break;
    case "timer":
      bindings.push({ name: "mytimer", type: "timerTrigger", direction: "in", schedule: trigger.schedule });
      break;
    case "queue":
      bindings.push({
        name: "msg",
        type: "queueTrigger",
        direction: "in",
        queueName: trigger.queueName,
        connection: trigger.connection,
      });
      break;
  }
  return json(scriptFile ? { scriptFile, bindings } : { bindings });
}

function pythonString(s: string): string {
  return JSON.stringify(s);
}

function pythonV1(trigger: Trigger): string {
  switch (trigger.kind) {
    case "http":
      return `import azure.functions as func
import logging


def main(req: func.HttpRequest) -> func.HttpResponse:
${PYTHON_HTTP_BODY}`;
    case "timer":
      return `import azure.functions as func
import datetime
import logging


def main(mytimer: func.TimerRequest) -> None:
    utc_timestamp = datetime.datetime.now(datetime.timezone.utc).isoformat()
    if mytimer.past_due:
        logging.info("The timer is past due!")
    logging.info("Python timer trigger function ran at %s", utc_timestamp)
`;
    case "queue":
      return `import azure.functions as func
import logging


def main(msg: func.QueueMessage) -> None:
    logging.info("Python queue trigger function processed a queue item: %s", msg.get_body().decode("utf-8"))
`;
  }
}

const PYTHON_V2_HEAD = `import azure.functions as func
import logging

app = func.FunctionApp()
`;

function pythonIdentifier(name: string): string {
  return name.replace(/-/g, "_");
}

function pythonV2(name: string, trigger: Trigger): string {
  const ident = pythonIdentifier(name);
  // The function's name is the Python function's unless it is not an identifier.
  const named = ident === name ? "" : `@app.function_name(name=${pythonString(name)})\n`;
  switch (trigger.kind) {
    case "http":
      return `${named}@app.route(route=${pythonString(name)}, auth_level=func.AuthLevel.${trigger.authLevel.toUpperCase()})
def ${ident}(req: func.HttpRequest) -> func.HttpResponse:
${PYTHON_HTTP_BODY}`;
    case "timer":
      return `${named}@app.timer_trigger(schedule=${pythonString(trigger.schedule)}, arg_name="mytimer", run_on_startup=False)
def ${ident}(mytimer: func.TimerRequest) -> None:
    if mytimer.past_due:
        logging.info("The timer is past due!")
    logging.info("Python timer trigger function executed.")
`;
    case "queue":
      return `${named}@app.queue_trigger(arg_name="msg", queue_name=${pythonString(trigger.queueName)}, connection=${pythonString(trigger.connection)})
def ${ident}(msg: func.QueueMessage) -> None:
    logging.info("Python queue trigger function processed a queue item: %s", msg.get_body().decode("utf-8"))
`;
  }
}

function jsString(s: string): string {
  return `'${s.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;
}

function javascriptV4(name: string, trigger: Trigger): string {
  const head = "const { app } = require('@azure/functions');\n\n";
  switch (trigger.kind) {
    case "http":
      return `${head}app.http(${jsString(name)}, {
    methods: ['GET', 'POST'],
    authLevel: ${jsString(trigger.authLevel)},
    handler: async (request, context) => {
        context.log(\`Http function processed request for url "\${request.url}"\`);

        const name = request.query.get('name') || (await request.text()) || 'world';

        return { body: \`Hello, \${name}!\` };
    }
});
`;
    case "timer":
      return `${head}app.timer(${jsString(name)}, {
    schedule: ${jsString(trigger.schedule)},
    handler: (myTimer, context) => {
        context.log('Timer function processed request.');
    }
});
`;
    case "queue":
      return `${head}app.storageQueue(${jsString(name)}, {
    queueName: ${jsString(trigger.queueName)},
    connection: ${jsString(trigger.connection)},
    handler: (queueItem, context) => {
        context.log('Storage queue function processed work item:', queueItem);
    }
});
`;
  }
}

/** package.json with "main" and the @azure/functions dependency, or null when it has both. */
function packageJson(current: string | undefined): string | null {
  let pkg: { main?: string; dependencies?: Record<string, string>; [k: string]: unknown };
  if (current === undefined) {
    pkg = {};
  } else {
    try {
      pkg = JSON.parse(current);
    } catch {
      throw new TemplateError("package.json is not valid JSON: fix it first.");
    }
  }
  let changed = current === undefined;
  if (current === undefined) {
    pkg.name = "functions";
    pkg.version = "1.0.0";
    pkg.private = true;
  }
  if (!pkg.main) {
    pkg.main = "src/functions/*.js";
    changed = true;
  }
  if (!pkg.dependencies?.["@azure/functions"]) {
    pkg.dependencies = { ...pkg.dependencies, "@azure/functions": "^4.0.0" };
    changed = true;
  }
  return changed ? json(pkg) : null;
}

/** The Python code of one function in handler.py. */
function handlerFunction(name: string, trigger: Trigger): string {
  const ident = pythonIdentifier(name);
  switch (trigger.kind) {
    case "http":
      return `def ${ident}(data, metadata):
    """${name}: an HTTP request in data["req"], the response in the output "res"."""
    query = (data.get("req") or {}).get("Query") or {}
    name = query.get("name")
    if isinstance(name, list):
        name = name[0] if name else None
    name = name or "world"
    return {
        "Outputs": {"res": {"statusCode": 200, "body": f"Hello, {name}!", "headers": {"Content-Type": "text/plain"}}},
        "Logs": [f"${name}: greeted {name}"],
        "ReturnValue": None,
    }
`;
    case "timer":
      return `def ${ident}(data, metadata):
    """${name}: the timer's schedule status in data["mytimer"]."""
    return {"Outputs": {}, "Logs": ["${name}: the timer fired"], "ReturnValue": None}
`;
    case "queue":
      return `def ${ident}(data, metadata):
    """${name}: the queue message in data["msg"]."""
    return {"Outputs": {}, "Logs": [f"${name}: processed {data.get('msg')!r}"], "ReturnValue": None}
`;
  }
}

function handlerPy(name: string, trigger: Trigger): string {
  return `# The app's custom handler: the Functions host sends each invocation here as
# POST /<function name> with {"Data", "Metadata"} and reads {"Outputs", "Logs", "ReturnValue"}
# back. Python's standard library only.
import json
import os
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


${handlerFunction(name, trigger)}

# The app's functions by name: add each new function here.
FUNCTIONS = {
    ${pythonString(name)}: ${pythonIdentifier(name)},
}


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        name = self.path.split("?")[0].strip("/")
        length = int(self.headers.get("Content-Length") or 0)
        try:
            payload = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            payload = {}
        function = FUNCTIONS.get(name)
        if function is None:
            self.answer(404, {"Outputs": {}, "Logs": [f"handler.py has no function {name}"], "ReturnValue": None})
            return
        try:
            result = function(payload.get("Data") or {}, payload.get("Metadata") or {})
        except Exception:
            self.answer(500, {"Outputs": {}, "Logs": [traceback.format_exc()], "ReturnValue": None})
            return
        self.answer(200, result)

    def answer(self, status, body):
        data = json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format, *args):
        pass


if __name__ == "__main__":
    port = int(os.environ.get("FUNCTIONS_CUSTOMHANDLER_PORT", "8080"))
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
`;
}
