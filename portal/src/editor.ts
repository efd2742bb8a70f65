// The code editor (CodeMirror), loaded the first time a file is opened: one view whose
// document is swapped per file, each file keeping its own text, selection and undo history.
// It lives in a shadow root so that its styles go in as constructed style sheets, which the
// page's Content-Security-Policy allows (a <style> element it would not).
import { Compartment, EditorState } from "@codemirror/state";
import type { Extension } from "@codemirror/state";
import {
  EditorView,
  drawSelection,
  highlightActiveLine,
  highlightActiveLineGutter,
  highlightSpecialChars,
  keymap,
  lineNumbers,
} from "@codemirror/view";
import { defaultKeymap, history, historyKeymap, indentWithTab } from "@codemirror/commands";
import { HighlightStyle, bracketMatching, indentOnInput, indentUnit, syntaxHighlighting } from "@codemirror/language";
import { javascript } from "@codemirror/lang-javascript";
import { json } from "@codemirror/lang-json";
import { python } from "@codemirror/lang-python";
import { tags as t } from "@lezer/highlight";

export interface Editor {
  /** Shows file `path`: its edited state when it was shown before, `text` otherwise. */
  show(path: string, text: string): void;
  /** The text of `path` as edited (undefined when it was never shown). */
  text(path: string): string | undefined;
  /** Forgets the edits of `path`, or of every file. */
  forget(path?: string): void;
  focus(): void;
  /** Makes every file read-only (while a change is being saved) or editable again. */
  setReadOnly(readOnly: boolean): void;
}

/** Colours readable on the light and the dark scheme alike. */
const highlight = HighlightStyle.define([
  { tag: [t.keyword, t.controlKeyword, t.operatorKeyword, t.definitionKeyword, t.moduleKeyword], color: "light-dark(#7a2e9a, #d4a2f0)" },
  { tag: [t.string, t.special(t.string), t.regexp], color: "light-dark(#a3341f, #f2a38c)" },
  { tag: [t.number, t.bool, t.null, t.atom], color: "light-dark(#116644, #7fd8a8)" },
  { tag: [t.comment, t.lineComment, t.blockComment], color: "light-dark(#6a737d, #9aa4ae)", fontStyle: "italic" },
  { tag: [t.function(t.variableName), t.function(t.propertyName)], color: "light-dark(#1f5fbf, #8cb8ff)" },
  { tag: [t.definition(t.variableName), t.className, t.typeName], color: "light-dark(#0b6f86, #7ad3e6)" },
  { tag: [t.propertyName], color: "light-dark(#1f5fbf, #8cb8ff)" },
  { tag: [t.meta, t.annotation], color: "light-dark(#8a5a00, #e8c07a)" },
  { tag: t.invalid, color: "#c0392b" },
]);

const theme = EditorView.theme({
  "&": { height: "100%", fontSize: "0.9rem", border: "1px solid var(--line)", borderRadius: "6px" },
  "&.cm-focused": { outline: "2px solid var(--accent)", outlineOffset: "2px" },
  ".cm-scroller": { fontFamily: "ui-monospace, SFMono-Regular, Menlo, Consolas, monospace", lineHeight: "1.5" },
  ".cm-gutters": {
    backgroundColor: "transparent",
    color: "color-mix(in srgb, currentColor 55%, transparent)",
    borderRight: "1px solid var(--line)",
  },
  ".cm-activeLine": { backgroundColor: "color-mix(in srgb, var(--accent) 7%, transparent)" },
  ".cm-activeLineGutter": { backgroundColor: "transparent", color: "currentColor" },
  ".cm-cursor, .cm-dropCursor": { borderLeftColor: "currentColor" },
  ".cm-selectionBackground, &.cm-focused > .cm-scroller > .cm-selectionLayer .cm-selectionBackground": {
    backgroundColor: "color-mix(in srgb, var(--accent) 30%, transparent)",
  },
  ".cm-matchingBracket, &.cm-focused .cm-matchingBracket": {
    backgroundColor: "color-mix(in srgb, var(--accent) 22%, transparent)",
  },
});

const common: Extension = [
  lineNumbers(),
  highlightActiveLineGutter(),
  highlightSpecialChars(),
  history(),
  drawSelection(),
  indentOnInput(),
  bracketMatching(),
  highlightActiveLine(),
  syntaxHighlighting(highlight),
  keymap.of([...defaultKeymap, ...historyKeymap, indentWithTab]),
  theme,
];

/** The language of a file by its extension, with its indentation. */
function language(path: string): Extension {
  const ext = path.slice(path.lastIndexOf(".") + 1).toLowerCase();
  switch (ext) {
    case "py":
      return [python(), indentUnit.of("    ")];
    case "js":
    case "mjs":
    case "cjs":
      return [javascript(), indentUnit.of("    ")];
    case "jsx":
      return [javascript({ jsx: true }), indentUnit.of("    ")];
    case "ts":
    case "mts":
    case "cts":
      return [javascript({ typescript: true }), indentUnit.of("    ")];
    case "tsx":
      return [javascript({ typescript: true, jsx: true }), indentUnit.of("    ")];
    case "json":
      return [json(), indentUnit.of("  ")];
    default:
      return [];
  }
}

/** An editor in `host`; `onChange` hears each edit of a file with the file's new text. */
export function mountEditor(host: HTMLElement, onChange: (path: string, text: string) => void): Editor {
  const shadow = host.shadowRoot ?? host.attachShadow({ mode: "open" });
  const frame = document.createElement("div");
  frame.className = "frame";
  frame.style.height = "100%";
  shadow.replaceChildren(frame);
  const view = new EditorView({ root: shadow, parent: frame });
  const states = new Map<string, EditorState>();
  let shown: string | null = null;
  const lock = new Compartment();
  let locked = false;

  const create = (path: string, text: string) =>
    EditorState.create({
      doc: text,
      extensions: [
        common,
        language(path),
        lock.of(EditorState.readOnly.of(locked)),
        EditorView.contentAttributes.of({ "aria-label": `Editor: ${path}` }),
        EditorView.updateListener.of((u) => {
          if (u.docChanged) onChange(path, u.state.doc.toString());
        }),
      ],
    });

  return {
    show(path, text) {
      if (shown !== null) states.set(shown, view.state);
      if (shown === path) return;
      const state = states.get(path) ?? create(path, text);
      states.set(path, state);
      view.setState(state);
      shown = path;
    },
    text(path) {
      if (path === shown) return view.state.doc.toString();
      return states.get(path)?.doc.toString();
    },
    forget(path) {
      if (path === undefined) {
        states.clear();
        shown = null;
        view.setState(EditorState.create({}));
      } else {
        states.delete(path);
        if (shown === path) {
          shown = null;
          view.setState(EditorState.create({}));
        }
      }
    },
    focus() {
      view.focus();
    },
    setReadOnly(readOnly) {
      if (readOnly === locked) return;
      locked = readOnly;
      const effects = lock.reconfigure(EditorState.readOnly.of(readOnly));
      for (const [path, state] of states) {
        if (path !== shown) states.set(path, state.update({ effects }).state);
      }
      if (shown !== null) view.dispatch({ effects });
    },
  };
}
