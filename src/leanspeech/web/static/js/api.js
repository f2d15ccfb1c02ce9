// Calls to the server: the API key (asked for once, kept in sessionStorage for this tab,
// sent as a header on REST and as a WebSocket subprotocol, never in a URL) and the
// server's error messages, thrown as ApiError so that every panel can show them.

const KEY = "leanspeech.apiKey";

export class ApiError extends Error {
  constructor(message, status = 0, code = null) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export function apiKey() {
  return sessionStorage.getItem(KEY);
}

let asking = null;

/** Ask for the key (one dialog however many calls need it); resolves false on cancel. */
export function askKey(message) {
  if (asking) return asking;
  const dialog = document.getElementById("key-dialog");
  const input = document.getElementById("key-input");
  const error = document.getElementById("key-error");
  error.hidden = !message;
  error.textContent = message || "";
  input.value = "";
  asking = new Promise((resolve) => {
    dialog.addEventListener("close", () => {
      asking = null;
      if (dialog.returnValue === "ok" && input.value) {
        sessionStorage.setItem(KEY, input.value);
        resolve(true);
      } else {
        resolve(false);
      }
    }, { once: true });
  });
  dialog.showModal();
  input.focus();
  return asking;
}

function withKey(headers = {}) {
  const key = apiKey();
  return key ? { ...headers, Authorization: `Bearer ${key}` } : headers;
}

/** The message of an error response (OpenAI's shape), or the status line. */
export async function errorOf(response) {
  let message = `${response.status} ${response.statusText}`;
  let code = null;
  try {
    const body = await response.json();
    if (body && body.error) {
      message = body.error.message || message;
      code = body.error.code || null;
    }
  } catch {
    // not JSON: keep the status line
  }
  return new ApiError(message, response.status, code);
}

/** fetch with the key; a 401 asks for the key and tries again. Throws ApiError. */
export async function call(path, options = {}) {
  for (let attempt = 0; ; attempt++) {
    let response;
    try {
      response = await fetch(path, { ...options, headers: withKey(options.headers) });
    } catch (err) {
      throw new ApiError(`the server could not be reached (${err.message})`);
    }
    if (response.status === 401 && attempt < 3) {
      const again = await askKey(attempt > 0 || apiKey() ? "That key was refused." : "");
      if (again) continue;
    }
    if (!response.ok) throw await errorOf(response);
    return response;
  }
}

export async function getJSON(path) {
  return (await call(path)).json();
}

export async function postJSON(path, body) {
  return (await call(path, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  })).json();
}

function base64url(text) {
  const bytes = new TextEncoder().encode(text);
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** A WebSocket to ``path`` on this server, speaking ``protocol``, with the key if any. */
export function socket(path, protocol) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const protocols = [protocol];
  const key = apiKey();
  if (key) protocols.push(`leanspeech.key.${base64url(key)}`);
  return new WebSocket(`${scheme}//${location.host}${path}`, protocols);
}

/** Show ``message`` in an error element (an empty message hides it). */
export function showError(element, message) {
  element.textContent = message || "";
  element.hidden = !message;
}

export function formatBytes(n) {
  if (n === null || n === undefined) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  let v = Math.abs(n);
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${n < 0 ? "-" : ""}${v.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

export function formatSeconds(s) {
  if (s === null || s === undefined) return "–";
  return s < 10 ? `${s.toFixed(2)} s` : `${s.toFixed(1)} s`;
}

/** Fill a <select> with [value, label] pairs, keeping the chosen value if it is still there. */
export function fillSelect(select, options, chosen) {
  const keep = chosen ?? select.value;
  select.replaceChildren(...options.map(([value, label]) => new Option(label, value)));
  if (options.some(([value]) => value === keep)) select.value = keep;
}

export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  Object.assign(node, props);
  node.append(...children);
  return node;
}
