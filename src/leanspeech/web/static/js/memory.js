// Memory: /memory polled every 2 s while the panel is open: a chart of the process's RSS
// and peak and the system's used memory (GPU memory per device when there is one), the
// loaded models, the budget's headroom, the clean-up button and the last unloads.

import uPlot from "../vendor/uPlot.esm.js";
import { call, el, formatBytes, getJSON, showError } from "./api.js";

const $ = (id) => document.getElementById(id);
const POINTS = 150; // 5 minutes at one reading every 2 s
const MiB = 1024 * 1024;

let chart = null;
let series = null; // [times, rss, peak, system used, ...gpu used]
let gpuNames = [];
let ttl = { stt: null, tts: null };
let timer = null;

function makeChart(gpus) {
  gpuNames = gpus.map((g) => `GPU ${g.index} used`);
  series = [[], [], [], [], ...gpuNames.map(() => [])];
  const colours = ["#1d4ed8", "#93c5fd", "#16a34a", "#d97706", "#9333ea"];
  const box = $("memory-chart");
  chart = new uPlot({
    width: Math.max(280, box.clientWidth || 600),
    height: 220,
    scales: { x: { time: true } },
    axes: [{}, { values: (u, ticks) => ticks.map((v) => `${v.toFixed(0)} MiB`), size: 70 }],
    series: [{}, ...["process RSS", "process peak", "system used", ...gpuNames].map((label, i) => ({
      label, stroke: colours[i % colours.length], width: 2, value: (u, v) => (v == null ? "–" : `${v.toFixed(0)} MiB`),
    }))],
  }, series, box);
  new ResizeObserver(() => chart.setSize({ width: Math.max(280, box.clientWidth), height: 220 })).observe(box);
}

function figure(label, value) {
  return el("div", {}, el("dt", { textContent: label }), el("dd", { textContent: value }));
}

function ttlText(kind) {
  const t = ttl[kind];
  if (t === null || t === undefined) return "–";
  return t < 0 ? "never" : t === 0 ? "at once" : `${t} s`;
}

function render(m) {
  if (!chart) makeChart(m.gpus || []);
  const values = [Date.now() / 1000, m.process.rss / MiB, m.process.peak_rss / MiB, m.system.used / MiB,
    ...(m.gpus || []).map((g) => (g.process_used ?? g.used) / MiB)];
  values.forEach((v, i) => { if (series[i]) { series[i].push(v); if (series[i].length > POINTS) series[i].shift(); } });
  chart.setData(series);
  const figures = [
    figure("process RSS", formatBytes(m.process.rss)),
    figure("process peak", formatBytes(m.process.peak_rss)),
    figure("system used", `${formatBytes(m.system.used)} of ${formatBytes(m.system.total)}`),
    figure("system available", formatBytes(m.system.available)),
    ...(m.gpus || []).map((g) => figure(`GPU ${g.index} ${g.name}`,
      `${formatBytes(g.used)} of ${formatBytes(g.total)}` + (g.process_used != null ? `, this process ${formatBytes(g.process_used)}` : ""))),
  ];
  if (m.torch) figures.push(figure("torch.cuda allocated", formatBytes(m.torch.allocated ?? m.torch.memory_allocated)));
  $("memory-figures").replaceChildren(...figures);

  const b = m.budget;
  const bar = $("budget-bar");
  if (b.limit) {
    const share = Math.min(1, b.used / b.limit);
    bar.firstElementChild.style.width = `${(share * 100).toFixed(1)}%`;
    bar.classList.toggle("high", share > 0.75 && share <= 0.95);
    bar.classList.toggle("full", share > 0.95);
    bar.setAttribute("aria-valuenow", (share * 100).toFixed(0));
    $("budget-text").textContent = `${formatBytes(b.used)} of ${formatBytes(b.limit)} used by models; `
      + `headroom ${formatBytes(b.headroom)}`;
  } else {
    bar.firstElementChild.style.width = "0";
    $("budget-text").textContent = `no budget set (LEANSPEECH_MEMORY__BUDGET); models use ${formatBytes(b.used)}`;
  }

  const rows = m.models.map((x) => el("tr", {},
    el("td", { textContent: x.name }), el("td", { textContent: x.kind }),
    el("td", { className: "num", textContent: formatBytes(x.bytes), title: `${x.bytes} bytes` }),
    el("td", { textContent: x.precision || "–" }), el("td", { className: "num", textContent: String(x.refs) }),
    el("td", { className: "num", textContent: `${Math.round(x.idle_s)} s` }),
    el("td", { textContent: ttlText(x.kind) })));
  if (!rows.length) rows.push(el("tr", {}, el("td", { colSpan: 7, className: "muted", textContent: "no model is loaded" })));
  $("models").tBodies[0].replaceChildren(...rows);
  $("unloads").replaceChildren(...(m.recent_unloads || []).slice().reverse().map((u) => el("li", {
    textContent: `${new Date(u.time * 1000).toLocaleTimeString()} ${u.key}: RSS ${formatBytes(u.rss_before)} → `
      + `${formatBytes(u.rss_after)} (freed ${formatBytes(u.rss_freed)}`
      + (u.gpu_freed != null ? `, GPU ${formatBytes(u.gpu_freed)})` : ")"),
  })));
}

export async function refreshMemory() {
  try {
    render(await getJSON("/memory"));
    showError($("memory-error"), "");
  } catch (err) {
    showError($("memory-error"), err.message);
  }
}

export function setupMemory(config) {
  ttl = config.ttl_s || ttl;
  $("cleanup").addEventListener("click", async () => {
    const out = $("cleanup-result");
    out.textContent = "cleaning up…";
    try {
      const m = await (await call("/memory/cleanup", { method: "POST" })).json();
      const c = m.cleanup;
      out.textContent = `freed ${formatBytes(c.freed)} (RSS ${formatBytes(c.rss_before)} → ${formatBytes(c.rss_after)}); `
        + (c.unloaded.length ? `unloaded ${c.unloaded.join(", ")}` : "nothing was idle");
      render(m);
    } catch (err) {
      out.textContent = "";
      showError($("memory-error"), err.message);
    }
  });
}

/** Poll while the Memory panel is shown. */
export function watchMemory(on) {
  clearInterval(timer);
  timer = null;
  if (on) {
    refreshMemory();
    timer = setInterval(refreshMemory, 2000);
  }
}
