/**
 * The bench report: a markdown table (value, baseline, ratio, target, pass/fail) and an SVG
 * chart of every targeted row's margin against its target, plus a short stdout summary.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Row } from "./types.ts";

export interface RunInfo {
  date: string;
  command: string;
  machine: string;
  load: string;
  durationSeconds: number;
  quick: boolean;
  errors: string[];
}

const fmt = (n: number | undefined) =>
  n === undefined || !Number.isFinite(n) ? "-" : Math.abs(n) >= 100 ? n.toFixed(0) : Math.abs(n) >= 10 ? n.toFixed(1) : n.toFixed(2);
const verdict = (r: Row) => (r.pass === undefined ? "info" : r.pass ? "pass" : "FAIL");

export function markdown(rows: Row[], info: RunInfo): string {
  const lines = [
    `# edge-upload bench, ${info.date}${info.quick ? " (quick)" : ""}`,
    "",
    `- Command: \`${info.command}\``,
    `- Machine: ${info.machine}`,
    `- Load: ${info.load}`,
    `- Duration: ${info.durationSeconds.toFixed(0)} s`,
    "",
    "| # | Measure | Value | Baseline | Ratio | Target | Result |",
    "|---|---|---|---|---|---|---|",
    ...rows.map(
      (r) =>
        `| ${r.item} | ${r.metric} | ${fmt(r.value)} ${r.unit} | ${r.baseline === undefined ? "-" : `${fmt(r.baseline)} ${r.unit} (${r.baselineLabel ?? ""})`} | ${r.ratio === undefined ? "-" : `${fmt(r.ratio)}x`} | ${r.target?.text ?? "-"} | ${verdict(r)} |`,
    ),
    "",
    "Notes:",
    "",
    ...rows.filter((r) => r.note).map((r) => `- ${r.metric}: ${r.note}`),
    ...(info.errors.length ? ["", "Scenarios that failed to run:", "", ...info.errors.map((e) => `- ${e}`)] : []),
    "",
    "Chart: every targeted measure as its margin against the target (1x = exactly on target; right of the line passes).",
    "",
  ];
  return lines.join("\n");
}

/** How far past the target a row is: > 1 passes, whichever direction the target points. */
export function margin(r: Row): number | undefined {
  if (!r.target) return undefined;
  const x = r.target.on === "ratio" ? r.ratio : r.value;
  if (x === undefined || !Number.isFinite(x)) return undefined;
  const m = r.target.direction === "higher" ? x / r.target.limit : x === 0 ? Number.POSITIVE_INFINITY : r.target.limit / x;
  return m;
}

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/** Horizontal bars on a log scale from 1/8x to 8x of the target, one per targeted row. */
export function svg(rows: Row[], title: string): string {
  const targeted = rows.filter((r) => r.target);
  const labelW = 520;
  const plotW = 420;
  const rowH = 34;
  const top = 56;
  const h = top + targeted.length * rowH + 40;
  const w = labelW + plotW + 150;
  const lo = Math.log(1 / 8);
  const hi = Math.log(8);
  const xOf = (m: number) => labelW + ((Math.log(Math.min(8, Math.max(1 / 8, m))) - lo) / (hi - lo)) * plotW;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" font-family="system-ui, sans-serif" font-size="13">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="16" y="24" font-size="16" font-weight="600">${esc(title)}</text>`,
    `<text x="16" y="42" fill="#555">Margin against target, log scale: the bar passes the line = target met (capped at 1/8x and 8x)</text>`,
  ];
  for (const t of [1 / 8, 1 / 4, 1 / 2, 1, 2, 4, 8]) {
    const x = xOf(t);
    parts.push(`<line x1="${x}" y1="${top - 6}" x2="${x}" y2="${h - 30}" stroke="${t === 1 ? "#222" : "#ddd"}" stroke-width="${t === 1 ? 2 : 1}"/>`);
    parts.push(`<text x="${x}" y="${h - 14}" text-anchor="middle" fill="#555">${t < 1 ? `1/${1 / t}` : t}x</text>`);
  }
  targeted.forEach((r, i) => {
    const y = top + i * rowH;
    const m = margin(r);
    const ok = r.pass === true;
    const label = `${r.item}. ${r.metric}`;
    parts.push(`<text x="16" y="${y + 20}">${esc(label.length > 78 ? `${label.slice(0, 76)}…` : label)}</text>`);
    if (m !== undefined) {
      const x = xOf(m);
      parts.push(`<rect x="${labelW}" y="${y + 6}" width="${Math.max(2, x - labelW)}" height="${rowH - 12}" rx="3" fill="${ok ? "#2e9d55" : "#d1453b"}"/>`);
    }
    const shown = r.target?.on === "ratio" ? `${fmt(r.ratio)}x` : `${fmt(r.value)} ${r.unit}`;
    parts.push(
      `<text x="${labelW + plotW + 10}" y="${y + 20}" fill="${ok ? "#1d6b3a" : "#a3251c"}">${esc(`${shown} (${r.target?.text ?? ""})`.slice(0, 60))}</text>`,
    );
  });
  parts.push("</svg>");
  return parts.join("\n");
}

export function summary(rows: Row[]): string {
  return rows
    .map((r) => {
      const mark = r.pass === undefined ? "  " : r.pass ? "ok" : "!!";
      const base = r.baseline === undefined ? "" : ` vs ${fmt(r.baseline)} (${fmt(r.ratio)}x)`;
      return `${mark} [${r.item}] ${r.metric}: ${fmt(r.value)} ${r.unit}${base}${r.target ? `  target ${r.target.text}` : ""}`;
    })
    .join("\n");
}

export async function writeReport(outDir: string, rows: Row[], info: RunInfo): Promise<{ md: string; svg: string }> {
  await mkdir(outDir, { recursive: true });
  const stamp = info.date.replace(/:/g, "-").replace(/\.\d+Z$/, "Z");
  const svgName = `${stamp}.svg`;
  const chart = svg(rows, `edge-upload bench ${info.date.slice(0, 10)}${info.quick ? " (quick)" : ""}`);
  const md = `${markdown(rows, info)}![ratios against targets](${svgName})\n`;
  const mdPath = join(outDir, `${stamp}.md`);
  const svgPath = join(outDir, svgName);
  await writeFile(mdPath, md);
  await writeFile(svgPath, chart);
  await writeFile(join(outDir, "latest.md"), md);
  await writeFile(join(outDir, "latest.svg"), chart);
  return { md: mdPath, svg: svgPath };
}
