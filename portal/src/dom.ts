// Building the page: elements whose text is always set as text, never parsed as HTML.

/** An element with attributes and children. */
export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  for (const c of children) e.append(c);
  return e;
}

/** A message: an alert for errors, a status line otherwise. */
export function message(text: string, kind: "error" | "info" = "error"): HTMLElement {
  return el("p", { class: kind, role: kind === "error" ? "alert" : "status" }, text);
}
