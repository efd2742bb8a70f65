// Small SVG charts of per-minute values (bars for counts, lines for latencies), drawn here
// without a library: presentation through classes in style.css, nothing inline.

const NS = "http://www.w3.org/2000/svg";
const W = 360;
const H = 150;
const PAD = { left: 40, right: 8, top: 10, bottom: 22 };

export interface Series {
  name: string;
  /** One value per minute; null where there is none. */
  values: (number | null)[];
  /** The class that colours it (s1, s2, s3). */
  cls: string;
}

function svg(tag: string, attrs: Record<string, string | number>, ...children: (Node | string)[]): SVGElement {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  for (const c of children) e.append(c);
  return e;
}

/** A round top for an axis that shows `max` (whose middle is whole too for `counts`). */
function niceMax(max: number, counts: boolean): number {
  if (max <= 0) return counts ? 4 : 1;
  const step = 10 ** Math.floor(Math.log10(max));
  for (const m of counts ? [1, 2, 4, 6, 8, 10] : [1, 2, 2.5, 5, 10]) if (max <= m * step) return m * step;
  return 10 * step;
}

function hhmm(ms: number): string {
  const d = new Date(ms);
  return `${String(d.getHours()).padStart(2, "0")}:${String(d.getMinutes()).padStart(2, "0")}`;
}

function num(v: number): string {
  return Number.isInteger(v) ? String(v) : v < 10 ? v.toFixed(2) : v.toFixed(1);
}

/** A chart of `series` over the minutes starting at `times`, as bars (`bars`: counts, whose
 * axis stops at whole numbers) or lines. */
export function chart(title: string, unit: string, times: number[], series: Series[], bars: boolean): HTMLElement {
  const all = series.flatMap((s) => s.values.filter((v): v is number => v !== null));
  const top = niceMax(Math.max(bars ? 4 : 0, ...all), bars);
  const n = Math.max(times.length, 1);
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const x = (i: number) => PAD.left + (plotW * i) / n;
  const y = (v: number) => PAD.top + plotH - (plotH * v) / top;
  const parts: SVGElement[] = [];
  for (const f of [0, 0.5, 1]) {
    const v = top * f;
    parts.push(
      svg("line", { x1: PAD.left, x2: W - PAD.right, y1: y(v), y2: y(v), class: "grid" }),
      svg("text", { x: PAD.left - 4, y: y(v) + 4, class: "axis", "text-anchor": "end" }, num(v)),
    );
  }
  if (times.length) {
    const last = times.length - 1;
    for (const [i, at, anchor] of [
      [0, PAD.left, "start"],
      [Math.floor(last / 2), x(Math.floor(last / 2) + 0.5), "middle"],
      [last, W - PAD.right, "end"],
    ] as const) {
      parts.push(svg("text", { x: at, y: H - 6, class: "axis", "text-anchor": anchor }, hhmm(times[i]!)));
    }
  }
  const bw = plotW / n;
  for (const s of series) {
    if (bars) {
      s.values.forEach((v, i) => {
        if (!v) return;
        parts.push(
          svg(
            "rect",
            { x: x(i) + bw * 0.1, y: y(v), width: Math.max(bw * 0.8, 1), height: Math.max(y(0) - y(v), 1), class: `bar ${s.cls}` },
            svg("title", {}, `${hhmm(times[i] ?? 0)}: ${num(v)} ${unit}`),
          ),
        );
      });
    } else {
      let d = "";
      let pen = false;
      s.values.forEach((v, i) => {
        if (v === null) {
          pen = false;
          return;
        }
        d += `${pen ? "L" : "M"}${(x(i) + bw / 2).toFixed(1)} ${y(v).toFixed(1)}`;
        pen = true;
      });
      if (d) parts.push(svg("path", { d, class: `line ${s.cls}` }));
      // Lone points (a busy minute between quiet ones) as dots.
      s.values.forEach((v, i) => {
        if (v === null || (s.values[i - 1] ?? null) !== null || (s.values[i + 1] ?? null) !== null) return;
        parts.push(svg("circle", { cx: x(i) + bw / 2, cy: y(v), r: 2, class: `dot ${s.cls}` }));
      });
    }
  }
  const latest = series
    .map((s) => {
      const v = [...s.values].reverse().find((x) => x !== null);
      return `${s.name} ${v === undefined || v === null ? "none" : `${num(v)} ${unit}`}`;
    })
    .join(", ");
  const peak = all.length ? `${num(Math.max(...all))} ${unit}` : "none";
  const picture = svg(
    "svg",
    { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": `${title}: latest ${latest}; highest ${peak}`, class: "chart" },
    ...parts,
  );
  const legend = document.createElement("p");
  legend.className = "legend";
  for (const s of series) {
    const key = document.createElement("span");
    key.className = `key ${s.cls}`;
    key.textContent = s.name;
    legend.append(key, " ");
  }
  const figure = document.createElement("figure");
  const caption = document.createElement("figcaption");
  caption.textContent = title;
  figure.append(caption, picture);
  if (series.length > 1) figure.append(legend);
  return figure;
}
