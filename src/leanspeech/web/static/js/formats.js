// A transcript the page holds (verbose_json) as a file: json as it came, every other format
// written by the server's own writers (POST /transcript/{format}), so that the page's srt and
// vtt are the API's, speaker labels and all.
import { call } from "./api.js";

export function stamp(seconds, separator) {
  const ms = Math.max(0, Math.round(seconds * 1000));
  const h = Math.floor(ms / 3600000);
  const m = Math.floor((ms % 3600000) / 60000);
  const s = Math.floor((ms % 60000) / 1000);
  const pad = (n, w = 2) => String(n).padStart(w, "0");
  return `${pad(h)}:${pad(m)}:${pad(s)}${separator}${pad(ms % 1000, 3)}`;
}

export async function toText(result, format) {
  if (format === "json") return JSON.stringify(result, null, 2) + "\n";
  const response = await call(`/transcript/${format}`, {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ segments: result.segments || [] }),
  });
  return response.text();
}

export const MEDIA = { txt: "text/plain", srt: "application/x-subrip", vtt: "text/vtt", json: "application/json" };

export function download(name, text, type) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}
