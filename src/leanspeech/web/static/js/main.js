// The page: tabs, and each panel filled from the server's own description of itself.

import { getJSON, showError } from "./api.js";
import { fillPlanChoices, loadPlan, setupFits } from "./fits.js";
import { setupLive } from "./live.js";
import { setupMemory, watchMemory } from "./memory.js";
import { fillVoices, setupSpeak } from "./speak.js";
import { fillModels, setupTranscribe, showPrecision } from "./transcribe.js";

const $ = (id) => document.getElementById(id);

function setupTabs() {
  const tabs = [...document.querySelectorAll("[role=tab]")];
  const select = (tab, focus) => {
    for (const t of tabs) {
      const on = t === tab;
      t.setAttribute("aria-selected", String(on));
      t.tabIndex = on ? 0 : -1;
      $(t.getAttribute("aria-controls")).hidden = !on;
    }
    if (focus) tab.focus();
    watchMemory(tab.id === "tab-memory");
    history.replaceState(null, "", `#${tab.getAttribute("aria-controls")}`);
  };
  tabs.forEach((tab, i) => {
    tab.addEventListener("click", () => select(tab, false));
    tab.addEventListener("keydown", (e) => {
      const step = { ArrowRight: 1, ArrowLeft: -1 }[e.key];
      if (step) select(tabs[(i + step + tabs.length) % tabs.length], true);
      if (e.key === "Home") select(tabs[0], true);
      if (e.key === "End") select(tabs[tabs.length - 1], true);
    });
  });
  const initial = tabs.find((t) => `#${t.getAttribute("aria-controls")}` === location.hash) || tabs[0];
  select(initial, false);
}

async function start() {
  setupTabs();
  setupTranscribe();
  setupLive();
  setupSpeak();
  setupFits();
  try {
    const [config, models, info, voices] = await Promise.all([
      getJSON("/config"), getJSON("/v1/models"), getJSON("/info"), getJSON("/v1/audio/voices"),
    ]);
    const stt = config.models.stt;
    $("server-line").textContent = `leanspeech ${info.versions.leanspeech} · ${stt.model} at ${stt.precision || "?"} `
      + `on ${stt.device || "?"} · voice ${config.models.tts.voice}`;
    fillModels(models.data, $("stt-model"), $("stt-language"));
    fillModels(models.data, $("live-model"), $("live-language"));
    showPrecision(config);
    fillVoices(voices);
    setupMemory(config);
    fillPlanChoices(models.data, info.devices, stt.precision);
    await loadPlan();
  } catch (err) {
    $("server-line").textContent = "";
    showError($("transcribe-error"), `could not read the server's configuration: ${err.message}`);
  }
}

start();
