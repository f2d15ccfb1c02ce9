// Speak: raw 16-bit PCM streamed from /v1/audio/speech, played as it arrives (Web Audio,
// each chunk scheduled after the last), then offered as a WAV in an <audio> element and a
// download.

import { call, fillSelect, formatSeconds, showError } from "./api.js";

const $ = (id) => document.getElementById(id);
let context = null;

export function fillVoices(voices) {
  const present = voices.data.filter((v) => v.present);
  fillSelect($("speak-voice"), present.map((v) => [v.id, v.name]));
}

function wav(chunks, rate) {
  const length = chunks.reduce((n, c) => n + c.length, 0);
  const view = new DataView(new ArrayBuffer(44 + length * 2));
  const text = (offset, s) => [...s].forEach((ch, i) => view.setUint8(offset + i, ch.charCodeAt(0)));
  text(0, "RIFF");
  view.setUint32(4, 36 + length * 2, true);
  text(8, "WAVEfmt ");
  view.setUint32(16, 16, true);
  view.setUint16(20, 1, true); // PCM
  view.setUint16(22, 1, true); // mono
  view.setUint32(24, rate, true);
  view.setUint32(28, rate * 2, true);
  view.setUint16(32, 2, true);
  view.setUint16(34, 16, true);
  text(36, "data");
  view.setUint32(40, length * 2, true);
  let offset = 44;
  for (const c of chunks) {
    for (let i = 0; i < c.length; i++, offset += 2) view.setInt16(offset, c[i], true);
  }
  return new Blob([view], { type: "audio/wav" });
}

async function speak(e) {
  e.preventDefault();
  const error = $("speak-error");
  showError(error, "");
  const go = $("speak-go");
  go.disabled = true;
  const audio = $("speak-audio");
  const link = $("speak-download");
  const timing = $("speak-timing");
  timing.textContent = "synthesizing…";
  context = context || new AudioContext();
  await context.resume();
  const started = performance.now();
  try {
    const body = {
      model: "tts-1", input: $("speak-text").value, voice: $("speak-voice").value, response_format: "pcm",
      speed: Number($("speak-speed").value) || 1,
    };
    if ($("speak-precision").value) body.precision = $("speak-precision").value;
    const response = await call("/v1/audio/speech", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
    const rate = Number(response.headers.get("X-Sample-Rate")) || 22050;
    const reader = response.body.getReader();
    const chunks = [];
    let carry = new Uint8Array(0);
    let next = 0;
    let firstSound = null;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      const bytes = new Uint8Array(carry.length + value.length);
      bytes.set(carry);
      bytes.set(value, carry.length);
      const even = bytes.length - (bytes.length % 2);
      carry = bytes.slice(even);
      if (even === 0) continue;
      const pcm = new Int16Array(bytes.buffer.slice(0, even));
      chunks.push(pcm);
      const buffer = context.createBuffer(1, pcm.length, rate);
      const channel = buffer.getChannelData(0);
      for (let i = 0; i < pcm.length; i++) channel[i] = pcm[i] / 32768;
      const source = context.createBufferSource();
      source.buffer = buffer;
      source.connect(context.destination);
      next = Math.max(next, context.currentTime + 0.05);
      source.start(next);
      next += buffer.duration;
      if (firstSound === null) {
        firstSound = (performance.now() - started) / 1000;
        timing.textContent = `first sound after ${formatSeconds(firstSound)}, still synthesizing…`;
      }
    }
    const samples = chunks.reduce((n, c) => n + c.length, 0);
    if (!samples) throw new Error("the server sent no audio");
    const total = (performance.now() - started) / 1000;
    timing.dataset.firstSound = firstSound.toFixed(3);
    timing.dataset.total = total.toFixed(3);
    timing.textContent = `first sound after ${formatSeconds(firstSound)} · all ${formatSeconds(samples / rate)} `
      + `of audio in ${formatSeconds(total)} · ${rate} Hz`;
    const url = URL.createObjectURL(wav(chunks, rate));
    if (audio.src) URL.revokeObjectURL(audio.src);
    audio.src = url;
    audio.hidden = false;
    link.href = url;
    link.hidden = false;
  } catch (err) {
    timing.textContent = "";
    showError(error, err.message);
  } finally {
    go.disabled = false;
  }
}

export function setupSpeak() {
  $("speak-form").addEventListener("submit", speak);
}
