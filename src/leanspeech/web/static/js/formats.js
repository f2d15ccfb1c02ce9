// A transcript (verbose_json: text and segments) as txt, srt, vtt or json.

function stamp(seconds, separator) {
  const ms = Math.max(0, Math.round(seconds * 1000));
  const h = Math.floor(ms / 3600000);
  const m = Math.floor((ms % 3600000) / 60000);
  const s = Math.floor((ms % 60000) / 1000);
  const pad = (n, w = 2) => String(n).padStart(w, "0");
  return `${pad(h)}:${pad(m)}:${pad(s)}${separator}${pad(ms % 1000, 3)}`;
}

export function toText(result, format) {
  const segments = result.segments || [];
  if (format === "json") return JSON.stringify(result, null, 2) + "\n";
  if (format === "txt") return (result.text || "").trim() + "\n";
  if (format === "srt") {
    return segments.map((s, i) =>
      `${i + 1}\n${stamp(s.start, ",")} --> ${stamp(s.end, ",")}\n${s.text.trim()}\n`).join("\n");
  }
  if (format === "vtt") {
    return "WEBVTT\n\n" + segments.map((s) =>
      `${stamp(s.start, ".")} --> ${stamp(s.end, ".")}\n${s.text.trim()}\n`).join("\n");
  }
  throw new Error(`unknown format ${format}`);
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

export { stamp };
