// Transcribe panel: a dropped, chosen or recorded file, streamed back as it is decoded
// (server-sent events with progress), then its segments, timing and downloads.

import { call, el, fillSelect, formatSeconds, showError } from "./api.js";
import { download, MEDIA, stamp, toText } from "./formats.js";
import { events } from "./sse.js";

const $ = (id) => document.getElementById(id);

// Whisper's most used languages (the server accepts every code Whisper knows).
export const LANGUAGES = [
  ["en", "English"], ["de", "German"], ["es", "Spanish"], ["fr", "French"], ["it", "Italian"],
  ["pt", "Portuguese"], ["nl", "Dutch"], ["pl", "Polish"], ["ru", "Russian"], ["uk", "Ukrainian"],
  ["tr", "Turkish"], ["ar", "Arabic"], ["hi", "Hindi"], ["ja", "Japanese"], ["ko", "Korean"],
  ["zh", "Chinese"], ["sv", "Swedish"], ["cs", "Czech"], ["el", "Greek"], ["fi", "Finnish"],
];

let chosen = null; // { blob, name }
let result = null;

/** Fill the model and language pickers from /v1/models (models on disk; the default first). */
export function fillModels(models, modelSelect, languageSelect) {
  const present = models.filter((m) => m.present);
  const ordered = [...present.filter((m) => m.default), ...present.filter((m) => !m.default)];
  fillSelect(modelSelect, ordered.map((m) => [m.id, m.default ? `${m.id} (default)` : m.id]));
  const update = () => {
    const card = models.find((m) => m.id === modelSelect.value);
    const langs = card && card.english_only ? LANGUAGES.slice(0, 1) : LANGUAGES;
    fillSelect(languageSelect, [["", "detect"], ...langs.map(([c, n]) => [c, `${n} (${c})`])]);
  };
  modelSelect.addEventListener("change", update);
  update();
}

function choose(blob, name) {
  chosen = { blob, name };
  $("file-name").textContent = `${name} (${(blob.size / 1024).toFixed(0)} KiB)`;
}

function setupInput() {
  const drop = $("drop");
  $("file").addEventListener("change", (e) => {
    const f = e.target.files[0];
    if (f) choose(f, f.name);
  });
  for (const type of ["dragenter", "dragover"]) {
    drop.addEventListener(type, (e) => { e.preventDefault(); drop.classList.add("over"); });
  }
  for (const type of ["dragleave", "drop"]) {
    drop.addEventListener(type, () => drop.classList.remove("over"));
  }
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    const f = e.dataTransfer.files[0];
    if (f) choose(f, f.name);
  });
}

function setupRecorder() {
  let recorder = null;
  const button = $("record");
  button.addEventListener("click", async () => {
    if (recorder) {
      recorder.stop();
      return;
    }
    try {
      const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
      const parts = [];
      recorder = new MediaRecorder(stream);
      recorder.ondataavailable = (e) => parts.push(e.data);
      recorder.onstop = () => {
        stream.getTracks().forEach((t) => t.stop());
        const type = recorder.mimeType || "audio/webm";
        choose(new Blob(parts, { type }), `recording.${type.includes("ogg") ? "ogg" : "webm"}`);
        recorder = null;
        button.textContent = "Record from the microphone";
        button.setAttribute("aria-pressed", "false");
        $("record-state").textContent = "recorded";
      };
      recorder.start();
      button.textContent = "Stop recording";
      button.setAttribute("aria-pressed", "true");
      $("record-state").textContent = "recording…";
    } catch (err) {
      showError($("transcribe-error"), `the microphone could not be used: ${err.message}`);
    }
  });
}

function timingLine(r, wall) {
  const info = r.leanspeech || {};
  const parts = [`audio ${formatSeconds(r.duration)}`, `took ${formatSeconds(wall)}`];
  if (info.decode_s !== undefined) parts.push(`decode ${formatSeconds(info.decode_s)}`);
  if (r.duration > 0) parts.push(`real-time factor ${(wall / r.duration).toFixed(3)}`);
  if (info.precision) {
    let ran = `ran ${info.model} at ${info.precision} on ${info.device}`;
    if (info.requested_precision && info.requested_precision !== info.precision) {
      ran += ` (asked ${info.requested_precision})`;
    }
    parts.push(ran);
  }
  if (r.language) parts.push(`language ${r.language}`);
  return parts.join(" · ") + (info.precision_reason ? ` — why: ${info.precision_reason}` : "");
}

function showSegments(r) {
  const body = $("segments").tBodies[0];
  const segments = r.segments || [];
  const speakers = segments.some((s) => s.speaker);
  $("speaker-head").hidden = !speakers;
  body.replaceChildren(...segments.map((s) => el("tr", {},
    el("td", { className: "num", textContent: stamp(s.start, ".") }),
    el("td", { className: "num", textContent: stamp(s.end, ".") }),
    ...(speakers ? [el("td", { className: "speaker", textContent: s.speaker || "" })] : []),
    el("td", { textContent: s.text.trim() }))));
  $("segments-wrap").hidden = false;
}

/** The transcript as text: one "[speaker] text" line per segment when speakers are known. */
function transcriptText(r) {
  const segments = r.segments || [];
  if (!segments.some((s) => s.speaker)) return r.text;
  return segments.map((s) => `[${s.speaker}] ${s.text.trim()}`).join("\n");
}

async function transcribe(e) {
  e.preventDefault();
  const error = $("transcribe-error");
  showError(error, "");
  if (!chosen) {
    showError(error, "choose, drop or record a file first");
    return;
  }
  const task = $("stt-task").value;
  const form = new FormData();
  form.append("file", chosen.blob, chosen.name);
  form.append("model", $("stt-model").value);
  form.append("response_format", "verbose_json");
  form.append("stream", "true");
  const language = $("stt-language").value;
  if (language && task === "transcribe") form.append("language", language);
  const speakers = $("stt-speakers").value;
  if (speakers && task === "transcribe") {
    form.append("diarize", "true");
    if (speakers !== "auto") form.append("num_speakers", speakers);
  }
  const go = $("transcribe-go");
  const progress = $("transcribe-progress");
  const transcript = $("transcript");
  go.disabled = true;
  progress.hidden = false;
  progress.removeAttribute("value"); // indeterminate until the first window is decoded
  transcript.textContent = "";
  $("transcribe-timing").textContent = "uploading and decoding…";
  $("segments-wrap").hidden = true;
  result = null;
  const started = performance.now();
  try {
    const path = task === "translate" ? "/v1/audio/translations" : "/v1/audio/transcriptions";
    const response = await call(path, { method: "POST", body: form });
    for await (const { event, data } of events(response)) {
      if (event === "error" || data.error) throw new Error((data.error && data.error.message) || "transcription failed");
      if (data.type === "transcript.text.delta") {
        transcript.textContent += data.delta;
        if (data.progress !== undefined) progress.value = data.progress;
      } else if (data.type === "transcript.text.done") {
        result = data;
      }
    }
    if (!result) throw new Error("the stream ended before the transcript was done");
    progress.value = 1;
    transcript.textContent = transcriptText(result);
    $("transcribe-timing").textContent = timingLine(result, (performance.now() - started) / 1000);
    showSegments(result);
  } catch (err) {
    $("transcribe-timing").textContent = "";
    showError(error, err.message);
  } finally {
    go.disabled = false;
    progress.hidden = true;
  }
}

export function setupTranscribe() {
  setupInput();
  setupRecorder();
  $("transcribe-form").addEventListener("submit", transcribe);
  $("downloads").addEventListener("click", async (e) => {
    const format = e.target.dataset && e.target.dataset.format;
    if (!format || !result) return;
    const stem = (chosen ? chosen.name : "transcript").replace(/\.[^.]+$/, "");
    const { type, ...body } = result;
    try {
      download(`${stem}.${format}`, await toText(body, format), MEDIA[format]);
    } catch (err) {
      showError($("transcribe-error"), err.message);
    }
  });
}

/** Show the precision the default model runs at (from /config) and why. */
export function showPrecision(config) {
  const stt = config.models.stt;
  const out = $("stt-precision");
  if (stt.error) {
    out.textContent = `unavailable: ${stt.error}`;
    return;
  }
  out.textContent = `${stt.precision} on ${stt.device}${stt.loaded ? "" : " (when loaded)"}`;
  out.title = stt.reason || "";
}
