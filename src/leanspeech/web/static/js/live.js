// Live captions: the microphone, resampled to 16 kHz float32 by an AudioWorklet, streamed
// to /v1/live over the WhisperLive protocol. Completed segments are black with their
// latency (arrival minus the moment the end of their speech was sent); the line in
// progress is grey. Stop sends END_OF_AUDIO and waits for the last text.

import { askKey, el, showError, socket } from "./api.js";

const $ = (id) => document.getElementById(id);
const RATE = 16000;

let session = null;

function setState(text) {
  $("live-state").textContent = text;
}

class Session {
  constructor(model, language) {
    this.uid = crypto.randomUUID ? crypto.randomUUID() : String(Math.random()).slice(2);
    this.model = model;
    this.language = language || null;
    this.sent = []; // [audio seconds sent so far, performance.now() when sent]
    this.samples = 0;
    this.completed = new Map(); // start -> { start, end, text, latency }
    this.partial = null;
    this.ready = false;
    this.ending = false;
  }

  async start() {
    this.stream = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false },
    });
    this.context = new AudioContext();
    await this.context.audioWorklet.addModule("/ui/js/capture-worklet.js");
    this.source = this.context.createMediaStreamSource(this.stream);
    this.node = new AudioWorkletNode(this.context, "leanspeech-capture");
    this.node.port.onmessage = (e) => this.onAudio(e.data);
    this.ws = socket("/v1/live", "leanspeech");
    this.ws.binaryType = "arraybuffer";
    this.ws.onopen = () => {
      this.ws.send(JSON.stringify({
        uid: this.uid, language: this.language, task: "transcribe", model: this.model, use_vad: true,
        send_last_n_segments: 1000,
      }));
      setState("connected, waiting for the server…");
    };
    this.ws.onmessage = (e) => this.onMessage(JSON.parse(e.data));
    this.ws.onerror = () => {};
    this.ws.onclose = (e) => this.onClose(e);
    this.source.connect(this.node);
  }

  onAudio(data) {
    if (data === "flushed") {
      if (this.ws.readyState === WebSocket.OPEN) this.ws.send(new TextEncoder().encode("END_OF_AUDIO"));
      return;
    }
    if (!this.ready || this.ws.readyState !== WebSocket.OPEN) return; // before SERVER_READY: not heard
    this.ws.send(data.buffer);
    this.samples += data.length;
    this.sent.push([this.samples / RATE, performance.now()]);
  }

  sentAt(seconds) {
    for (const [audio, wall] of this.sent) if (audio >= seconds) return wall;
    return this.sent.length ? this.sent[this.sent.length - 1][1] : performance.now();
  }

  onMessage(msg) {
    if (msg.message === "SERVER_READY") {
      this.ready = true;
      setState("listening");
    } else if (msg.status === "WAIT") {
      showError($("live-error"), `every live slot is busy; try again in about ${Math.ceil(msg.message)} min`);
    } else if (msg.status === "ERROR") {
      showError($("live-error"), msg.message);
    } else if (msg.status === "WARNING") {
      setState(`warning: ${msg.message}`);
    } else if (msg.message === "DISCONNECT") {
      setState("the server ended the session (maximum connection time)");
    } else if (msg.segments) {
      this.onSegments(msg.segments);
    }
  }

  onSegments(segments) {
    const now = performance.now();
    this.partial = null;
    for (const s of segments) {
      const start = Number(s.start);
      const end = Number(s.end);
      if (s.completed) {
        if (!this.completed.has(start)) {
          this.completed.set(start, { start, end, text: s.text, latency: (now - this.sentAt(end)) / 1000 });
        } else {
          this.completed.get(start).text = s.text;
        }
      } else {
        this.partial = { start, end, text: s.text };
      }
    }
    this.render();
  }

  render() {
    const items = [...this.completed.values()].sort((a, b) => a.start - b.start).map((c) => el("li",
      { className: "done" }, c.text.trim(), el("span", { className: "latency", textContent: `+${c.latency.toFixed(2)} s` })));
    if (this.partial && this.partial.text.trim()) {
      items.push(el("li", { className: "partial", textContent: this.partial.text.trim() }));
    }
    $("captions").replaceChildren(...items);
  }

  stopAudio() {
    if (this.stream) this.stream.getTracks().forEach((t) => t.stop());
    if (this.source) this.source.disconnect();
  }

  stop() {
    this.ending = true;
    this.stopAudio();
    setState("finishing: the last words…");
    if (this.node) this.node.port.postMessage("flush"); // then END_OF_AUDIO, after the last samples
    this.timer = setTimeout(() => this.ws && this.ws.close(), 30000);
  }

  async onClose(e) {
    clearTimeout(this.timer);
    this.stopAudio();
    if (this.context) this.context.close();
    this.partial = null;
    this.render();
    session = null;
    $("live-start").disabled = false;
    $("live-stop").disabled = true;
    if (e.code === 1008 && /API key/i.test(e.reason)) {
      setState("stopped");
      showError($("live-error"), "the server needs an API key; enter it and press Start again");
      await askKey();
      return;
    }
    if (e.code !== 1000 && !this.ending) {
      showError($("live-error"), `the connection was lost (${e.code}${e.reason ? `: ${e.reason}` : ""})`);
    } else if (e.code !== 1000 && e.code !== 1005 && e.reason) {
      showError($("live-error"), e.reason);
    }
    setState("stopped");
  }
}

export function setupLive() {
  $("live-start").addEventListener("click", async () => {
    showError($("live-error"), "");
    $("captions").replaceChildren();
    $("live-start").disabled = true;
    session = new Session($("live-model").value, $("live-language").value);
    try {
      await session.start();
      $("live-stop").disabled = false;
      setState("connecting…");
    } catch (err) {
      session.stopAudio();
      session = null;
      $("live-start").disabled = false;
      showError($("live-error"), `the microphone could not be used: ${err.message}`);
    }
  });
  $("live-stop").addEventListener("click", () => {
    $("live-stop").disabled = true;
    if (session) session.stop();
  });
}
