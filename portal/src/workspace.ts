// An app's code (#/apps/{app}/code): the live version's files, opened into the editor and
// edited, new and deleted files, all saved as one change that deploys a new version (followed
// to its end); the API's complaints about a file shown next to it; new functions from templates.
import { ApiError, FAILED, STATUS_NAMES, SUCCESS, appPath, call, callBytes } from "./api";
import type { ChangeAccepted, DeploymentDetail, FileChange, FileListing } from "./api";
import { el, message } from "./dom";
import type { Editor } from "./editor";
import { onLeave, sleep } from "./lifecycle";
import { newFunctionDialog } from "./new-function";

/** Files larger than this are not opened into the editor. */
const MAX_EDIT_BYTES = 2 * 1024 * 1024;
/** Folders shown closed until opened (and only then listed). */
const HEAVY = new Set(["node_modules", ".python_packages", "__pycache__", ".venv", "bin", "obj"]);

interface Entry {
  path: string;
  /** Bytes on the server (0 for a new file). */
  size: number;
  isNew: boolean;
  /** The text on the server, once loaded ("" for a new file). */
  original?: string;
  /** The text as edited, once the file was shown in the editor. */
  text?: string;
  binary: boolean;
  deleted: boolean;
}

/** What the new-function dialog needs of the code view. */
export interface Workspace {
  app: string;
  paths(): string[];
  hasEdits(): boolean;
  /** The text of an existing file (undefined when there is none). */
  read(path: string): Promise<string | undefined>;
  /** Saves `files` as one change; the deployment is followed, then `open` is opened. */
  save(files: FileChange[], message: string, open?: string): Promise<void>;
  note(...lines: string[]): void;
}

function changed(e: Entry): boolean {
  if (e.deleted) return !e.isNew;
  return e.isNew || (e.text !== undefined && e.text !== e.original);
}

function decode(bytes: ArrayBuffer): string | null {
  const view = new Uint8Array(bytes);
  if (view.includes(0)) return null;
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(view);
  } catch {
    return null;
  }
}

/** Why `path` cannot name a new file, or null when it can. */
function pathProblem(path: string): string | null {
  if (!path) return "Give the file a path.";
  if (path.startsWith("/") || path.endsWith("/")) return "A path neither starts nor ends with /.";
  if (path.includes("\\")) return "Separate folders with /.";
  if (path.split("/").some((s) => s === "" || s === "." || s === "..")) return "A path has no empty, . or .. parts.";
  return null;
}

export async function codeView(app: string, show: (...nodes: Node[]) => void, openFirst?: string): Promise<void> {
  let version: number | null = null;
  let entries = new Map<string, Entry>();
  let current: string | null = null;
  let editor: Editor | null = null;
  let busy = false;
  let left = false;
  /** The API's complaints by file ("" for those naming none). */
  let problems = new Map<string, string[]>();
  const buttons = new Map<string, HTMLButtonElement>();
  const openDirs = new Set<string>();
  const closedDirs = new Set<string>();
  onLeave(() => {
    left = true;
  });
  const beforeUnload = (ev: BeforeUnloadEvent) => {
    if ([...entries.values()].some(changed)) ev.preventDefault();
  };
  window.addEventListener("beforeunload", beforeUnload);
  onLeave(() => window.removeEventListener("beforeunload", beforeUnload));

  // The page.
  const versionLine = el("p", {});
  const status = el("div", { class: "deploy-status", "aria-live": "polite" });
  const notes = el("div", {});
  const tree = el("nav", { class: "files", "aria-label": "Files" });
  const fileTitle = el("h2", { id: "open-file", class: "file-title" }, "No file open");
  const deleteFile = el("button", { type: "button", class: "link", disabled: "" }, "Delete file");
  const fileProblems = el("div", {});
  const fileMessage = el("div", {});
  const editorHost = el("div", { class: "editor-host", hidden: "" });
  const changeCount = el("span", { class: "info" }, "No changes");
  const messageInput = el("input", { id: "change-message", name: "message", placeholder: "Describe the change", autocomplete: "off" });
  const saveButton = el("button", { type: "submit" }, "Save");
  const saveForm = el(
    "form",
    { class: "save", "aria-label": "Save changes" },
    el("label", { for: "change-message" }, "Change message"),
    messageInput,
    saveButton,
    changeCount,
  );
  const newFunction = el("button", { type: "button" }, "New function");
  const newFileToggle = el("button", { type: "button", class: "secondary", "aria-expanded": "false", "aria-controls": "new-file" }, "New file");
  const reloadButton = el("button", { type: "button", class: "secondary" }, "Reload");
  const newFilePath = el("input", { id: "new-file-path", name: "path", placeholder: "folder/name.py", autocomplete: "off", spellcheck: "false", required: "" });
  const newFileStatus = el("div", {});
  const newFileForm = el(
    "form",
    { id: "new-file", class: "inline", "aria-label": "New file", hidden: "" },
    el("label", { for: "new-file-path" }, "New file path"),
    newFilePath,
    el("button", { type: "submit" }, "Add file"),
  );

  const entryOf = (path: string) => entries.get(path);
  const edits = () => [...entries.values()].filter(changed);

  function state(e: Entry): string {
    if (e.deleted) return "deleted";
    if (problems.has(e.path)) return "has problems";
    if (e.isNew) return "new";
    return changed(e) ? "changed" : "";
  }

  /** The file's button shows whether it is new, changed, deleted or has problems. */
  function mark(path: string): void {
    const b = buttons.get(path);
    const e = entryOf(path);
    if (!b || !e) return;
    const s = state(e);
    b.className = `file ${s.replace(/ /g, "-")}`;
    b.setAttribute("aria-label", s ? `${path} (${s})` : path);
    if (path === current) b.setAttribute("aria-current", "true");
    else b.removeAttribute("aria-current");
    const flag = b.querySelector(".flag");
    if (flag) flag.textContent = { deleted: " ✕", "has problems": " ⚠", new: " +", changed: " ●", "": "" }[s] ?? "";
  }

  function counts(): void {
    const n = edits().length;
    changeCount.textContent = n ? `${n} changed file${n === 1 ? "" : "s"}` : "No changes";
  }

  function fileButton(path: string): HTMLElement {
    const name = path.slice(path.lastIndexOf("/") + 1);
    const b = el("button", { type: "button", class: "file" }, name, el("span", { class: "flag", "aria-hidden": "true" }));
    b.addEventListener("click", () => void open(path));
    buttons.set(path, b);
    mark(path);
    return el("li", {}, b);
  }

  interface Dir {
    dirs: Map<string, Dir>;
    files: string[];
  }

  function dirList(dir: Dir, prefix: string): HTMLElement {
    const ul = el("ul", {});
    for (const [name, sub] of [...dir.dirs].sort(([a], [b]) => a.localeCompare(b))) {
      const full = `${prefix}${name}`;
      const details = el("details", {}, el("summary", {}, `${name}/`));
      let built = false;
      const build = () => {
        if (built) return;
        built = true;
        details.append(dirList(sub, `${full}/`));
      };
      const hasProblem = [...problems.keys()].some((p) => p.startsWith(`${full}/`));
      const startOpen = hasProblem || openDirs.has(full) || (!HEAVY.has(name) && !closedDirs.has(full));
      if (startOpen) {
        details.open = true;
        build();
      }
      details.addEventListener("toggle", () => {
        if (details.open) {
          openDirs.add(full);
          closedDirs.delete(full);
          build();
        } else {
          openDirs.delete(full);
          closedDirs.add(full);
        }
      });
      ul.append(el("li", {}, details));
    }
    for (const path of dir.files.sort((a, b) => a.localeCompare(b))) ul.append(fileButton(path));
    return ul;
  }

  function renderTree(): void {
    buttons.clear();
    const root: Dir = { dirs: new Map(), files: [] };
    const paths = new Set([...entries.keys(), ...[...problems.keys()].filter((p) => p && !entries.has(p))]);
    for (const path of paths) {
      const parts = path.split("/");
      let dir = root;
      for (const part of parts.slice(0, -1)) {
        let sub = dir.dirs.get(part);
        if (!sub) dir.dirs.set(part, (sub = { dirs: new Map(), files: [] }));
        dir = sub;
      }
      dir.files.push(path);
    }
    tree.replaceChildren(paths.size ? dirList(root, "") : message("No files yet: add a function or a file.", "info"));
    counts();
  }

  function renderProblems(): void {
    const list = current ? (problems.get(current) ?? []) : [];
    fileProblems.replaceChildren(
      list.length
        ? el(
            "ul",
            { class: "problems", role: "alert", "aria-label": `Problems in ${current}` },
            ...list.map((m) => el("li", { class: "error" }, m)),
          )
        : "",
    );
  }

  async function loadEditor(): Promise<Editor> {
    if (!editor) {
      const { mountEditor } = await import("./editor");
      editor ??= mountEditor(editorHost, (path, text) => {
        const e = entryOf(path);
        if (!e) return;
        e.text = text;
        mark(path);
        counts();
      });
    }
    return editor;
  }

  async function original(e: Entry): Promise<void> {
    if (e.original !== undefined || e.binary || e.isNew) return;
    const bytes = await callBytes(appPath(app, `/files/${e.path.split("/").map(encodeURIComponent).join("/")}`));
    const text = decode(bytes);
    if (text === null) e.binary = true;
    else e.original = text;
  }

  /** Opens file `path` into the editor (or says why it cannot be edited). */
  async function open(path: string): Promise<void> {
    const previous = current;
    current = path;
    if (previous) mark(previous);
    mark(path);
    fileTitle.textContent = path;
    renderProblems();
    const e = entryOf(path);
    deleteFile.disabled = !e || e.deleted;
    deleteFile.setAttribute("aria-label", `Delete ${path}`);
    const showMessage = (...nodes: (Node | string)[]) => {
      editorHost.hidden = true;
      fileMessage.replaceChildren(...nodes);
    };
    if (!e) {
      showMessage(message("This file is not in the app's files.", "info"));
      return;
    }
    if (e.deleted) {
      const restore = el("button", { type: "button", class: "link" }, "Restore");
      restore.addEventListener("click", () => {
        e.deleted = false;
        mark(path);
        counts();
        void open(path);
      });
      showMessage(el("p", { class: "info", role: "status" }, "This file is deleted when you save. ", restore));
      return;
    }
    if (e.size > MAX_EDIT_BYTES) {
      showMessage(message(`This file has ${e.size} bytes: too large to edit here.`, "info"));
      return;
    }
    try {
      if (e.original === undefined && !e.isNew) showMessage(message("Loading…", "info"));
      await original(e);
      const ed = await loadEditor();
      if (current !== path || left) return;
      if (e.binary) {
        showMessage(message(`A binary file (${e.size} bytes): it cannot be edited here.`, "info"));
        return;
      }
      fileMessage.replaceChildren();
      ed.show(path, e.text ?? e.original ?? "");
      editorHost.hidden = false;
    } catch (err) {
      showMessage(message(err instanceof Error ? err.message : String(err)));
    }
  }

  function closeFile(): void {
    current = null;
    fileTitle.textContent = "No file open";
    deleteFile.disabled = true;
    editorHost.hidden = true;
    fileMessage.replaceChildren();
    renderProblems();
  }

  /** Reads the live version's files again (edits dropped) and opens `path` when it exists. */
  async function load(path: string | null): Promise<void> {
    const listing = await call<FileListing>("GET", appPath(app, "/files"));
    version = listing.version;
    entries = new Map(listing.files.map((f) => [f.path, { path: f.path, size: f.size, isNew: false, binary: false, deleted: false }]));
    editor?.forget();
    versionLine.textContent = version === null ? `${app} has no live version yet.` : `${app} · version ${version}`;
    renderTree();
    const next = path && entries.has(path) ? path : null;
    if (next) await open(next);
    else closeFile();
  }

  function reloadAsked(): void {
    if (edits().length && !confirm("Reload the files? Your changes here are dropped.")) return;
    problems = new Map();
    status.replaceChildren();
    void load(current).catch((e) => status.replaceChildren(message(e instanceof Error ? e.message : String(e))));
  }

  /** Follows deployment `id` to its end; null when the view was left first. */
  async function follow(id: string, line: HTMLElement): Promise<DeploymentDetail | null> {
    const started = Date.now();
    for (;;) {
      if (left) return null;
      try {
        const d = await call<DeploymentDetail>("GET", appPath(app, `/deployments/${encodeURIComponent(id)}`));
        if (d.complete) return d;
        line.textContent = `Deployment ${id}: ${STATUS_NAMES[d.status] ?? d.status}… (${Math.round((Date.now() - started) / 1000)} s)`;
      } catch (e) {
        // A hiccup of the API: say so and keep following.
        line.textContent = `Deployment ${id}: ${e instanceof Error ? e.message : String(e)}; trying again…`;
      }
      await sleep(1000);
    }
  }

  function showInvalid(e: ApiError): void {
    problems = new Map();
    for (const d of e.details) {
      const file = d.file ?? "";
      problems.set(file, [...(problems.get(file) ?? []), d.message]);
    }
    renderTree();
    renderProblems();
    const items = e.details.map((d) => {
      if (!d.file) return el("li", {}, d.message);
      const go = el("button", { type: "button", class: "link" }, d.file);
      const file = d.file;
      go.addEventListener("click", () => void open(file));
      return el("li", {}, go, ": ", d.message);
    });
    status.replaceChildren(
      el(
        "div",
        { role: "alert", class: "error" },
        el("p", {}, `Not saved: ${e.message}`),
        items.length ? el("ul", { class: "problems", "aria-label": "Problems" }, ...items) : "",
      ),
    );
  }

  function showConflict(e: ApiError): void {
    const reload = el("button", { type: "button" }, "Reload files");
    reload.addEventListener("click", reloadAsked);
    status.replaceChildren(
      el(
        "div",
        { role: "alert", class: "error" },
        el("p", {}, `The app changed meanwhile, so this was not saved (${e.message}). Reload the files to edit the live version: your changes here are dropped.`),
        reload,
      ),
    );
  }

  async function save(files: FileChange[], msg: string, after?: string): Promise<void> {
    if (busy) return;
    if (!files.length) {
      status.replaceChildren(message("Nothing to save.", "info"));
      return;
    }
    busy = true;
    saveButton.disabled = true;
    newFunction.disabled = true;
    editor?.setReadOnly(true);
    const line = el("p", { role: "status" }, "Saving…");
    status.replaceChildren(line);
    try {
      const accepted = await call<ChangeAccepted>("POST", appPath(app, "/changes"), { baseVersion: version, message: msg, files });
      problems = new Map();
      renderTree();
      renderProblems();
      line.textContent = `Deploying version ${accepted.version}…`;
      const d = await follow(accepted.deployment, line);
      if (!d) return;
      if (d.status === SUCCESS) {
        status.replaceChildren(el("p", { role: "status", class: "ok" }, `Version ${d.version ?? accepted.version} is live.`));
        messageInput.value = "";
        await load(after ?? current);
      } else {
        const failed = d.status === FAILED ? "failed" : `ended ${STATUS_NAMES[d.status] ?? d.status}`;
        status.replaceChildren(
          el(
            "div",
            { role: "alert" },
            el("p", { class: "error" }, `The deployment ${failed}: version ${accepted.version} did not go live. Your changes are still here.`),
            el(
              "ol",
              { class: "log", "aria-label": `Log of deployment ${d.id}` },
              ...d.log.map((l) => el("li", { class: ["info", "warning", "error"][l.type] ?? "info" }, l.message)),
            ),
          ),
        );
      }
    } catch (e) {
      if (e instanceof ApiError && e.status === 409) showConflict(e);
      else if (e instanceof ApiError && e.status === 422) showInvalid(e);
      else status.replaceChildren(message(e instanceof Error ? e.message : String(e)));
    } finally {
      busy = false;
      saveButton.disabled = false;
      newFunction.disabled = false;
      editor?.setReadOnly(false);
    }
  }

  function describe(list: Entry[]): string {
    const names = (kind: (e: Entry) => boolean) => list.filter(kind).map((e) => e.path);
    const parts: string[] = [];
    const edited = names((e) => !e.deleted && !e.isNew);
    const added = names((e) => !e.deleted && e.isNew);
    const removed = names((e) => e.deleted);
    if (edited.length) parts.push(`Edited ${edited.join(", ")}`);
    if (added.length) parts.push(`added ${added.join(", ")}`);
    if (removed.length) parts.push(`deleted ${removed.join(", ")}`);
    const text = parts.join("; ");
    return text.charAt(0).toUpperCase() + text.slice(1);
  }

  saveForm.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const list = edits();
    const files: FileChange[] = list.map((e) =>
      e.deleted ? { path: e.path, delete: true as const } : { path: e.path, content: e.text ?? e.original ?? "" },
    );
    void save(files, messageInput.value.trim() || describe(list));
  });

  deleteFile.addEventListener("click", () => {
    const path = current;
    const e = path ? entryOf(path) : undefined;
    if (!path || !e) return;
    if (e.isNew) {
      entries.delete(path);
      editor?.forget(path);
      renderTree();
      closeFile();
      return;
    }
    e.deleted = true;
    mark(path);
    counts();
    void open(path);
  });

  newFileToggle.addEventListener("click", () => {
    newFileForm.hidden = !newFileForm.hidden;
    newFileToggle.setAttribute("aria-expanded", String(!newFileForm.hidden));
    if (!newFileForm.hidden) newFilePath.focus();
  });
  newFileForm.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const path = newFilePath.value.trim();
    const problem = pathProblem(path);
    const existing = entryOf(path);
    if (problem || (existing && !existing.deleted)) {
      newFileStatus.replaceChildren(message(problem ?? `${path} exists already.`));
      return;
    }
    newFileStatus.replaceChildren();
    if (existing) existing.deleted = false;
    else entries.set(path, { path, size: 0, isNew: true, original: "", text: "", binary: false, deleted: false });
    newFilePath.value = "";
    newFileForm.hidden = true;
    newFileToggle.setAttribute("aria-expanded", "false");
    renderTree();
    void open(path).then(() => editor?.focus());
  });

  reloadButton.addEventListener("click", reloadAsked);

  const workspace: Workspace = {
    app,
    paths: () => [...entries.values()].filter((e) => !e.deleted).map((e) => e.path),
    hasEdits: () => edits().length > 0,
    async read(path) {
      const e = entryOf(path);
      if (!e || e.deleted) return undefined;
      await original(e);
      return e.text ?? e.original;
    },
    save,
    note(...lines) {
      notes.replaceChildren(...lines.map((l) => el("p", { class: "note", role: "note" }, l)));
    },
  };
  newFunction.addEventListener("click", () => newFunctionDialog(workspace, newFunction));

  show(
    el("p", {}, el("a", { href: `#/apps/${encodeURIComponent(app)}` }, `← ${app}`)),
    el("h1", {}, "Code"),
    versionLine,
    el("div", { class: "toolbar" }, newFunction, newFileToggle, reloadButton, saveForm),
    newFileForm,
    newFileStatus,
    notes,
    status,
    el(
      "div",
      { class: "workspace" },
      tree,
      el(
        "section",
        { class: "editor-pane", "aria-labelledby": "open-file" },
        el("div", { class: "file-head" }, fileTitle, deleteFile),
        fileProblems,
        fileMessage,
        editorHost,
        el("p", { class: "info hint" }, "Tab indents; Esc then Tab moves on from the editor. Ctrl+Z undoes."),
      ),
    ),
  );
  await load(openFirst ?? null);
}
