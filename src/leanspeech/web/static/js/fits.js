// Fits: the committed plan measurements and charts, and a quick plan of one model on this
// machine (POST /plan: a worker process with a time limit; one at a time).

import { el, fillSelect, formatBytes, getJSON, postJSON, showError } from "./api.js";

const $ = (id) => document.getElementById(id);

function table(rows, caption) {
  const head = ["model", "precision", "batch", "peak memory", "estimate", "load", "× real time (greedy)",
    "× real time (beam 5)"];
  return el("div", { className: "scroll" }, el("table", {},
    el("caption", { textContent: caption }),
    el("thead", {}, el("tr", {}, ...head.map((h) => el("th", { scope: "col", textContent: h })))),
    el("tbody", {}, ...rows.map((r) => r.ok
      ? el("tr", {},
        el("td", { textContent: r.model + (r.synthetic ? " (synthetic)" : "") }), el("td", { textContent: r.precision }),
        el("td", { className: "num", textContent: String(r.batch) }),
        el("td", { className: "num", textContent: formatBytes(r.peak_bytes) }),
        el("td", { className: "num", textContent: formatBytes(r.estimate_bytes) }),
        el("td", { className: "num", textContent: `${r.load_s.toFixed(2)} s` }),
        el("td", { className: "num", textContent: (1 / r.rtf_greedy).toFixed(1) }),
        el("td", { className: "num", textContent: (1 / r.rtf_beam5).toFixed(1) }))
      : el("tr", {}, el("td", { textContent: r.model }), el("td", { textContent: r.precision }),
        el("td", { className: "num", textContent: String(r.batch) }),
        el("td", { colSpan: 5, className: "error", textContent: `failed: ${r.error}` }))))));
}

function advice(rec) {
  if (!rec) return "";
  if (rec.fits) {
    return `Recommended: ${rec.model} at ${rec.precision}, batch up to ${rec.batch} (peak ${formatBytes(rec.peak_bytes)})`
      + (rec.synthetic ? ", measured on synthetic weights" : "");
  }
  return `Nothing fits: ${rec.reason}`;
}

function showReport(box, report, caption) {
  box.replaceChildren(table(report.rows, caption), el("p", { textContent: advice(report.recommendation) }));
}

export async function loadPlan() {
  const data = await getJSON("/plan");
  if (data.measured) {
    const m = data.measured;
    const where = m.machine ? ` on ${m.machine.cpu || m.machine.processor || "the project's CPU"}` : "";
    showReport($("plan-measured"), m, `leanspeech plan${where}, committed`);
  }
  $("plan-charts").replaceChildren(...data.charts.map((c) => el("figure", {},
    el("img", { src: c.url, alt: c.title, loading: "lazy" }), el("figcaption", { textContent: c.title }))));
  if (data.last) showReport($("plan-result"), data.last, "Your last quick plan on this machine");
  if (data.running_s !== null) $("plan-state").textContent = `a quick plan is running (${data.running_s} s)`;
  $("plan-state").dataset.timeout = data.timeout_s;
}

export function fillPlanChoices(models, devices, defaultPrecision) {
  fillSelect($("plan-model"), models.filter((m) => m.present).map((m) => [m.id, m.id]));
  const precisions = (devices[0] && devices[0].precisions) || [];
  fillSelect($("plan-precision"), precisions.filter((p) => p !== "auto").map((p) => [p, p]), defaultPrecision);
}

export function setupFits() {
  $("plan-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    showError($("plan-error"), "");
    const go = $("plan-go");
    const state = $("plan-state");
    go.disabled = true;
    const started = performance.now();
    const tick = setInterval(() => {
      state.textContent = `measuring in a worker process… ${((performance.now() - started) / 1000).toFixed(0)} s`
        + ` (limit ${state.dataset.timeout || "?"} s)`;
    }, 500);
    try {
      const report = await postJSON("/plan", {
        model: $("plan-model").value, precision: $("plan-precision").value,
        batch: Number($("plan-batch").value) || 1,
      });
      showReport($("plan-result"), report, "Quick plan on this machine");
      state.textContent = `done in ${((performance.now() - started) / 1000).toFixed(1)} s`;
    } catch (err) {
      state.textContent = "";
      showError($("plan-error"), err.message);
    } finally {
      clearInterval(tick);
      go.disabled = false;
    }
  });
}
