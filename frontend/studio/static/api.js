// The studio's only door to the server: the public REST API, with the API key as a header, and tickets for the
// URLs a browser cannot put a header on (<video src>, <img src>, WebSocket).

const KEY_STORAGE = "visualizr.apiKey";

export const catalog = JSON.parse(document.getElementById("catalog").textContent);

export const apiKey = {
  get: () => localStorage.getItem(KEY_STORAGE) || "",
  set: (key) => (key ? localStorage.setItem(KEY_STORAGE, key) : localStorage.removeItem(KEY_STORAGE)),
};

export class ApiError extends Error {
  constructor(status, code, message, details, retryAfter) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
    this.retryAfter = retryAfter;
  }
}

const unauthorizedListeners = [];
export const onUnauthorized = (listener) => unauthorizedListeners.push(listener);

/** A JSON call; `json` or `form` is the body. Errors become ApiError with the API's code. */
export async function request(path, { method = "GET", json, form, query } = {}) {
  const headers = { Accept: "application/json" };
  const key = apiKey.get();
  if (key) headers.Authorization = `Bearer ${key}`;
  let body;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  } else if (form) {
    body = form;
  }
  const url = query ? `${path}?${new URLSearchParams(query)}` : path;
  let response;
  try {
    response = await fetch(url, { method, headers, body, cache: "no-store" });
  } catch (err) {
    throw new ApiError(0, "NETWORK", "The server cannot be reached.", String(err));
  }
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const error = (data && data.error) || {};
    const failure = new ApiError(
      response.status,
      error.code || `HTTP_${response.status}`,
      error.message || response.statusText,
      error.details,
      Number(response.headers.get("Retry-After")) || undefined,
    );
    if (response.status === 401) unauthorizedListeners.forEach((listener) => listener(failure));
    throw failure;
  }
  return data;
}

/** {path: usable URL}: the paths themselves without a key, else each with its own short-lived ticket. */
export async function signed(paths) {
  const wanted = [...new Set(paths.filter(Boolean))];
  if (!apiKey.get() || wanted.length === 0) return Object.fromEntries(wanted.map((p) => [p, p]));
  const { tickets } = await request("/studio/tickets", { method: "POST", json: { paths: wanted } });
  return Object.fromEntries(wanted.map((p) => [p, `${p}?ticket=${encodeURIComponent(tickets[p])}`]));
}

const CODE_TEXT = {
  INVALID_PROMPT: "The prompt is missing or not accepted.",
  INVALID_PARAMETERS: "A setting is not accepted.",
  MODEL_NOT_FOUND: "That model is not available on this server.",
  REQUEST_NOT_FOUND: "That job or video does not exist (any more).",
  INSUFFICIENT_GPU_MEMORY: "Not enough GPU memory right now: try a smaller size or fewer frames.",
  MODEL_LOAD_FAILED: "The model could not be loaded on the server.",
  GENERATION_FAILED: "The generation failed on the server.",
  QUEUE_FULL: "The queue is full.",
  UNAUTHORIZED: "This server needs an API key (or the saved one is wrong): set it under “API key”.",
  ROUTE_NOT_FOUND: "The server does not know this address: is it a Visualizr API of this version?",
  NETWORK: "The server cannot be reached. Is it running?",
};

/** One sentence for a person: what happened (by code) and the server's own words. */
export function describeError(error) {
  const code = error.code || "GENERATION_FAILED";
  let text = CODE_TEXT[code] || `Error ${code}.`;
  if (code === "QUEUE_FULL" && error.retryAfter) text += ` Try again in ${error.retryAfter} s.`;
  const own = error.message && error.message !== text ? ` ${error.message}` : "";
  return `${text}${own}`;
}

export const videoIdOf = (url) => url.split("/").pop().replace(/\.mp4$/, "");
