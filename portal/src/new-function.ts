// The "New function" dialog: a name, a language model and a trigger make a change set from a
// template, saved like the editor's changes (after setting FUNCTIONS_WORKER_RUNTIME when the
// app has none), and the new function's main file opened.
import { appPath, call, callText } from "./api";
import { el, message } from "./dom";
import { DEFAULT_CONNECTION, DEFAULT_SCHEDULE, MODELS, TemplateError, filesToRead, nameProblem, newFunction } from "./templates";
import type { AuthLevel, Model, Trigger } from "./templates";
import type { Workspace } from "./workspace";

function field(id: string, label: string, input: HTMLElement, hint?: string): HTMLElement {
  input.id = id;
  const wrap = el("div", { class: "field" }, el("label", { for: id }, label), input);
  if (hint) {
    input.setAttribute("aria-describedby", `${id}-hint`);
    wrap.append(el("p", { id: `${id}-hint`, class: "info hint" }, hint));
  }
  return wrap;
}

function select(options: [string, string][], value: string): HTMLSelectElement {
  const s = el("select", {});
  for (const [v, label] of options) s.append(el("option", { value: v }, label));
  s.value = value;
  return s;
}

/** Opens the dialog over the code view; focus goes back to `opener` when it closes. */
export function newFunctionDialog(ws: Workspace, opener: HTMLElement): void {
  const name = el("input", {
    name: "name",
    required: "",
    autocomplete: "off",
    spellcheck: "false",
    maxlength: "60",
    pattern: "[A-Za-z][A-Za-z0-9_\\-]*",
    title: "Letters, digits, _ and -, starting with a letter",
  });
  const model = select(MODELS.map((m) => [m.value, m.label]), "python-v1");
  const trigger = select([["http", "HTTP"], ["timer", "Timer"], ["queue", "Queue"]], "http");
  const authLevel = select([["anonymous", "anonymous"], ["function", "function"], ["admin", "admin"]], "function");
  const schedule = el("input", { name: "schedule", value: DEFAULT_SCHEDULE, spellcheck: "false", autocomplete: "off" });
  const queueName = el("input", { name: "queue", spellcheck: "false", autocomplete: "off", placeholder: "work-items" });
  const connection = el("input", { name: "connection", value: DEFAULT_CONNECTION, spellcheck: "false", autocomplete: "off" });
  const authField = field("nf-auth", "Auth level", authLevel);
  const scheduleField = field("nf-schedule", "Schedule", schedule, "Six fields: second minute hour day month day-of-week.");
  const queueField = field("nf-queue", "Queue name", queueName);
  const connectionField = field("nf-connection", "Connection", connection, "The app setting with the storage account's connection.");
  const modelNote = el("p", { class: "note", role: "note" });
  const status = el("div", { class: "result" });
  const create = el("button", { type: "submit" }, "Create function");
  const cancel = el("button", { type: "button", class: "secondary" }, "Cancel");

  const sync = () => {
    authField.hidden = trigger.value !== "http";
    scheduleField.hidden = trigger.value !== "timer";
    queueField.hidden = trigger.value !== "queue";
    connectionField.hidden = trigger.value !== "queue";
    queueName.required = trigger.value === "queue";
    const notes: Record<Model, string> = {
      "python-v1": "A folder with function.json and __init__.py; requirements.txt gets azure-functions.",
      "python-v2": "A decorated function in function_app.py; requirements.txt gets azure-functions.",
      "javascript-v4":
        "src/functions/NAME.js. The app needs its node_modules, which the portal cannot install: run `npm install` and publish the app with `stratus publish`.",
      custom: "A folder with function.json; handler.py (Python's standard library) answers the host when the app has no handler yet.",
    };
    modelNote.textContent = notes[model.value as Model];
  };
  model.addEventListener("change", sync);
  trigger.addEventListener("change", sync);
  name.addEventListener("input", () => name.setCustomValidity(name.value ? (nameProblem(name.value) ?? "") : ""));

  const form = el(
    "form",
    { class: "panel" },
    el("h2", { id: "nf-title" }, "New function"),
    field("nf-name", "Function name", name),
    field("nf-model", "Language", model),
    field("nf-trigger", "Trigger", trigger),
    authField,
    scheduleField,
    queueField,
    connectionField,
    modelNote,
    status,
    el("div", { class: "actions" }, create, cancel),
  );
  const dialog = el("dialog", { "aria-labelledby": "nf-title", class: "dialog" }, form);
  const close = () => {
    dialog.close();
    dialog.remove();
    opener.focus();
  };
  cancel.addEventListener("click", close);
  dialog.addEventListener("cancel", (ev) => {
    ev.preventDefault();
    close();
  });

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    status.replaceChildren();
    if (ws.hasEdits()) {
      status.replaceChildren(message("Save or reload the changes in the editor first: a new function is a change of its own."));
      return;
    }
    const t: Trigger =
      trigger.value === "timer"
        ? { kind: "timer", schedule: schedule.value.trim() }
        : trigger.value === "queue"
          ? { kind: "queue", queueName: queueName.value.trim(), connection: connection.value.trim() }
          : { kind: "http", authLevel: authLevel.value as AuthLevel };
    const spec = { name: name.value.trim(), model: model.value as Model, trigger: t };
    create.disabled = true;
    try {
      const settings = await call<Record<string, string>>("GET", appPath(ws.app, "/settings"));
      const content: Record<string, string> = {};
      for (const path of filesToRead(spec.model)) {
        const text = await ws.read(path);
        if (text !== undefined) content[path] = text;
      }
      const change = newFunction(spec, {
        paths: ws.paths(),
        content,
        runtime: settings.FUNCTIONS_WORKER_RUNTIME ?? null,
      });
      if (change.runtime) {
        await callText("PUT", appPath(ws.app, `/settings/${encodeURIComponent("FUNCTIONS_WORKER_RUNTIME")}`), change.runtime);
      }
      close();
      ws.note(...change.notes);
      await ws.save(change.files, change.message, change.main);
    } catch (e) {
      const text = e instanceof TemplateError || e instanceof Error ? e.message : String(e);
      if (dialog.isConnected) status.replaceChildren(message(text));
      else ws.note(text);
    } finally {
      create.disabled = false;
    }
  });

  sync();
  document.getElementById("view")?.append(dialog);
  dialog.showModal();
  name.focus();
}
