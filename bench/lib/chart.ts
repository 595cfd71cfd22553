// A small SVG chart writer: panels of horizontal bars, optionally on a log scale, with target ticks.

export interface Bar {
  label: string;
  value: number;
  /** Series name; bars of the same series share a colour (shown in the legend). */
  series: string;
  /** Drawn as a dark tick across the bar's row. */
  target?: number;
}

export interface Panel {
  title: string;
  unit: string;
  log?: boolean;
  bars: Bar[];
}

const PALETTE = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#b07aa1"];
const WIDTH = 1000;
const LABEL_W = 380;
const VALUE_W = 110;
const ROW_H = 22;
const PANEL_GAP = 34;

const escapeXml = (text: string): string =>
  text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

function formatValue(value: number, unit: string): string {
  if (!Number.isFinite(value)) return "n/a";
  const abs = Math.abs(value);
  const text = abs >= 1000 ? Math.round(value).toLocaleString("en-US") : abs >= 10 ? value.toFixed(1) : abs >= 1 ? value.toFixed(2) : value.toFixed(3);
  return `${text} ${unit}`;
}

export function renderChart(title: string, subtitle: string, panels: readonly Panel[]): string {
  const plotW = WIDTH - LABEL_W - VALUE_W - 20;
  const series = [...new Set(panels.flatMap((p) => p.bars.map((b) => b.series)))];
  const colour = (name: string): string => PALETTE[series.indexOf(name) % PALETTE.length]!;
  const parts: string[] = [];
  let y = 56;
  for (const panel of panels) {
    const bars = panel.bars.filter((bar) => Number.isFinite(bar.value) && bar.value > 0);
    const max = Math.max(...bars.map((b) => Math.max(b.value, b.target ?? 0)), 1e-9);
    const min = panel.log ? Math.min(...bars.map((b) => Math.min(b.value, b.target ?? Infinity))) : 0;
    const lo = panel.log ? Math.pow(10, Math.floor(Math.log10(min))) : 0;
    const hi = panel.log ? Math.pow(10, Math.ceil(Math.log10(max))) : max * 1.05;
    const scale = (v: number): number =>
      panel.log ? ((Math.log10(Math.max(v, lo)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * plotW : (v / hi) * plotW;
    parts.push(`<text x="16" y="${y}" class="panel">${escapeXml(panel.title)}${panel.log ? " (log scale)" : ""}</text>`);
    y += 12;
    const top = y;
    // Grid lines: decades on a log scale, fifths otherwise.
    const ticks: number[] = [];
    if (panel.log) for (let v = lo; v <= hi * 1.0001; v *= 10) ticks.push(v);
    else for (let i = 0; i <= 5; i++) ticks.push((hi / 5) * i);
    const height = bars.length * ROW_H;
    for (const tick of ticks) {
      const x = LABEL_W + scale(tick);
      parts.push(`<line x1="${x.toFixed(1)}" y1="${top}" x2="${x.toFixed(1)}" y2="${top + height}" class="grid"/>`);
      parts.push(`<text x="${x.toFixed(1)}" y="${top + height + 13}" class="tick">${escapeXml(formatValue(tick, ""))}</text>`);
    }
    for (const bar of bars) {
      const w = Math.max(1, scale(bar.value));
      parts.push(`<text x="${LABEL_W - 8}" y="${y + 15}" class="label">${escapeXml(bar.label)}</text>`);
      parts.push(`<rect x="${LABEL_W}" y="${y + 4}" width="${w.toFixed(1)}" height="${ROW_H - 8}" fill="${colour(bar.series)}"/>`);
      parts.push(`<text x="${(LABEL_W + w + 6).toFixed(1)}" y="${y + 15}" class="value">${escapeXml(formatValue(bar.value, panel.unit))}</text>`);
      if (bar.target !== undefined && bar.target > 0) {
        const x = LABEL_W + scale(bar.target);
        parts.push(`<line x1="${x.toFixed(1)}" y1="${y + 1}" x2="${x.toFixed(1)}" y2="${y + ROW_H - 1}" class="target"/>`);
      }
      y += ROW_H;
    }
    y += PANEL_GAP;
  }
  // Legend.
  let x = 16;
  const legend: string[] = [];
  for (const name of series) {
    legend.push(`<rect x="${x}" y="${y - 10}" width="12" height="12" fill="${colour(name)}"/>`);
    legend.push(`<text x="${x + 17}" y="${y}" class="legend">${escapeXml(name)}</text>`);
    x += 24 + name.length * 7;
  }
  legend.push(`<line x1="${x}" y1="${y - 11}" x2="${x}" y2="${y + 2}" class="target"/>`);
  legend.push(`<text x="${x + 7}" y="${y}" class="legend">target</text>`);
  const total = y + 18;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${total}" viewBox="0 0 ${WIDTH} ${total}" font-family="Helvetica, Arial, sans-serif">
<style>
.title{font-size:17px;font-weight:bold;fill:#222}.sub{font-size:11px;fill:#666}.panel{font-size:13px;font-weight:bold;fill:#333}
.label{font-size:11px;fill:#333;text-anchor:end}.value{font-size:11px;fill:#333}.tick{font-size:9px;fill:#888;text-anchor:middle}
.grid{stroke:#e5e5e5;stroke-width:1}.target{stroke:#111;stroke-width:2.5}.legend{font-size:11px;fill:#333}
</style>
<rect width="100%" height="100%" fill="#fff"/>
<text x="16" y="24" class="title">${escapeXml(title)}</text>
<text x="16" y="40" class="sub">${escapeXml(subtitle)}</text>
${parts.join("\n")}
${legend.join("\n")}
</svg>
`;
}
