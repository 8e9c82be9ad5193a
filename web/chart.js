// A small SVG chart of a result: bars or a line over one label column and one
// numeric column, with a noisy cell's 95% interval ({"value","ci_low","ci_high"}
// in src/results/results.h) drawn as an error bar. No library: a page that
// holds a party's key loads as little code as it can.

const SVG = "http://www.w3.org/2000/svg";

export function cellValue(cell) {
  return cell !== null && typeof cell === "object" && "value" in cell ? cell.value : cell;
}

export function isNoisy(cell) {
  return cell !== null && typeof cell === "object" && typeof cell.value === "number" &&
    typeof cell.ci_low === "number" && typeof cell.ci_high === "number";
}

// Columns whose every released cell is a number (or a noisy number).
export function numericColumns(result) {
  return result.columns.map((c, i) => i).filter((i) =>
    result.rows.length > 0 && result.rows.every((r) => typeof cellValue(r[i]) === "number"));
}

// A line suits an ordered label (dates, times, numbers); bars the rest.
export function defaultKind(result, labelIndex) {
  const labels = result.rows.map((r) => cellValue(r[labelIndex]));
  const ordered = labels.every((v) => typeof v === "number" || /^\d{4}-\d{2}-\d{2}/.test(String(v)));
  return ordered && labels.length > 2 ? "line" : "bar";
}

function el(name, attrs = {}, text = null) {
  const e = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== null) e.textContent = text;
  return e;
}

function niceMax(v) {
  if (v <= 0) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

// Draws into a new <svg>; returns it.
export function renderChart(result, { kind, label, value, title }) {
  const W = 720, H = 320, L = 64, R = 16, T = 24, B = 72;
  const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", class: "chart", "data-kind": kind });
  svg.appendChild(el("title", {}, title));
  const rows = result.rows;
  const vals = rows.map((r) => cellValue(r[value]));
  const highs = rows.map((r) => (isNoisy(r[value]) ? r[value].ci_high : cellValue(r[value])));
  const lows = rows.map((r) => (isNoisy(r[value]) ? r[value].ci_low : cellValue(r[value])));
  const max = niceMax(Math.max(0, ...highs));
  const min = Math.min(0, ...lows);
  const y = (v) => T + (H - T - B) * (1 - (v - min) / (max - min || 1));
  const slot = (W - L - R) / Math.max(1, rows.length);
  const x = (i) => L + slot * (i + 0.5);

  // Axes and five gridlines.
  for (let k = 0; k <= 4; k++) {
    const v = min + ((max - min) * k) / 4;
    svg.appendChild(el("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), class: "grid" }));
    svg.appendChild(el("text", { x: L - 6, y: y(v) + 4, "text-anchor": "end", class: "tick" }, formatNumber(v)));
  }
  svg.appendChild(el("line", { x1: L, x2: L, y1: T, y2: H - B, class: "axis" }));
  svg.appendChild(el("line", { x1: L, x2: W - R, y1: y(0), y2: y(0), class: "axis" }));

  if (kind === "line") {
    const pts = vals.map((v, i) => `${x(i)},${y(v)}`).join(" ");
    svg.appendChild(el("polyline", { points: pts, class: "series line" }));
  }
  rows.forEach((r, i) => {
    const v = vals[i];
    if (kind === "bar") {
      const w = Math.max(2, slot * 0.7);
      svg.appendChild(el("rect", { x: x(i) - w / 2, y: Math.min(y(v), y(0)), width: w, height: Math.abs(y(0) - y(v)), class: "series bar" }));
    } else {
      svg.appendChild(el("circle", { cx: x(i), cy: y(v), r: 3.5, class: "series point" }));
    }
    if (isNoisy(r[value])) {
      const g = el("g", { class: "errorbar" });
      g.appendChild(el("line", { x1: x(i), x2: x(i), y1: y(r[value].ci_low), y2: y(r[value].ci_high) }));
      g.appendChild(el("line", { x1: x(i) - 5, x2: x(i) + 5, y1: y(r[value].ci_low), y2: y(r[value].ci_low) }));
      g.appendChild(el("line", { x1: x(i) - 5, x2: x(i) + 5, y1: y(r[value].ci_high), y2: y(r[value].ci_high) }));
      svg.appendChild(g);
    }
    const lab = String(cellValue(r[label]));
    const t = el("text", { x: x(i), y: H - B + 14, "text-anchor": "end", class: "tick",
      transform: `rotate(-35 ${x(i)} ${H - B + 14})` }, lab.length > 18 ? lab.slice(0, 17) + "…" : lab);
    svg.appendChild(t);
  });
  return svg;
}

export function formatNumber(v) {
  if (typeof v !== "number") return String(v);
  if (Number.isInteger(v)) return v.toLocaleString("en-US");
  return v.toLocaleString("en-US", { maximumFractionDigits: 2 });
}
