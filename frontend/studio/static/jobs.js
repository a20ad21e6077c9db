// The queue panel: one card per submitted job, driven by the WebSocket (subscribe per request id, with live
// previews; the server answers with the current state at once, then progress, previews, completed, failed or
// cancelled). If the socket cannot be opened, the cards poll GET /api/v1/generate/status instead. A new card is
// scrolled to where the user looks; a completed job leaves the queue for the gallery (onCompleted).

import { catalog, describeError, request, signed } from "./api.js";
import { announce } from "./ui.js";

const STEP_TEXT = {
  queued: "Waiting in the queue",
  loading_model: "Loading the model",
  text_encoding: "Reading the prompt",
  frame_generation: "Generating frames",
  decoding: "Decoding frames",
  encoding: "Encoding the MP4",
  done: "Finishing",
};
const STATE_TEXT = { queued: "Queued", processing: "Running", completed: "Done", failed: "Failed", cancelled: "Cancelled" };
const POLL_MS = 1500;
const MAX_BACKOFF_MS = 10000;
const SILENCE_MS = 5000;

export class JobBoard {
  constructor(list, { onCompleted }) {
    this.list = list;
    this.onCompleted = onCompleted;
    this.jobs = new Map(); // request id -> {card, done}
    this.socket = null;
    this.connecting = null;
    this.failures = 0;
    this.pollTimer = null;
  }

  add(accepted, title) {
    const card = document.getElementById("job-template").content.firstElementChild.cloneNode(true);
    card.dataset.requestId = accepted.request_id;
    card.querySelector(".job-title").textContent = title;
    card.querySelector("progress").setAttribute("aria-label", `Progress of ${title}`);
    const cancel = card.querySelector(".job-cancel");
    cancel.addEventListener("click", () => this.cancel(accepted.request_id, cancel));
    this.list.prepend(card);
    document.getElementById("jobs-empty").hidden = true;
    this.jobs.set(accepted.request_id, { card, done: false });
    this.update({ request_id: accepted.request_id, status: accepted.status, progress: 0, queue_position: accepted.queue_position, estimated_remaining_seconds: accepted.estimated_time_seconds, current_step: "queued" });
    this.subscribe(accepted.request_id);
    card.scrollIntoView({ block: "nearest" });
    card.focus({ preventScroll: true });
  }

  remove(requestId) {
    const job = this.jobs.get(requestId);
    if (!job) return;
    job.card.remove();
    this.jobs.delete(requestId);
    document.getElementById("jobs-empty").hidden = this.jobs.size > 0;
  }

  async cancel(requestId, button) {
    button.disabled = true;
    try {
      this.handle({ type: "cancelled", ...(await request(`/api/v1/generate/${encodeURIComponent(requestId)}`, { method: "DELETE" })) });
    } catch (error) {
      button.disabled = false;
      this.detail(requestId, describeError(error));
    }
  }

  // --- transport ---

  async subscribe(requestId) {
    const socket = await this.connect();
    if (!socket) return this.startPolling();
    socket.send(JSON.stringify({ type: "subscribe", request_id: requestId, previews: true }));
    // The server answers a subscription with the job's state at once: silence means a socket that does not work
    // (a proxy that holds frames, say), so poll as well.
    setTimeout(() => {
      const job = this.jobs.get(requestId);
      if (job && !job.heard && !job.done) this.startPolling();
    }, SILENCE_MS);
  }

  async connect() {
    if (this.socket && this.socket.readyState === WebSocket.OPEN) return this.socket;
    if (this.connecting) return this.connecting;
    this.connecting = this.open().finally(() => (this.connecting = null));
    return this.connecting;
  }

  async open() {
    let url;
    try {
      url = (await signed([catalog.ws_path]))[catalog.ws_path];
    } catch {
      return null;
    }
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    return new Promise((resolve) => {
      const socket = new WebSocket(`${scheme}//${location.host}${url}`);
      socket.addEventListener("open", () => {
        socket.send(JSON.stringify({ type: "previews" })); // before a job starts: its pipeline makes previews
        this.socket = socket;
        resolve(socket);
      });
      socket.addEventListener("message", (event) => {
        this.failures = 0; // a socket that answers works; one that only opens and closes does not
        this.handle(JSON.parse(event.data));
      });
      socket.addEventListener("close", () => {
        if (this.socket === socket) this.socket = null;
        resolve(null);
        this.reconnect();
      });
    });
  }

  reconnect() {
    if (!this.active().length) return;
    this.failures += 1;
    if (this.failures > 3) return this.startPolling();
    setTimeout(async () => {
      const socket = await this.connect();
      if (socket) this.active().forEach((id) => socket.send(JSON.stringify({ type: "subscribe", request_id: id, previews: true })));
    }, Math.min(MAX_BACKOFF_MS, 500 * 2 ** this.failures));
  }

  active() {
    return [...this.jobs].filter(([, job]) => !job.done).map(([id]) => id);
  }

  startPolling() {
    if (this.pollTimer) return;
    this.pollTimer = setInterval(async () => {
      const ids = this.active();
      if (!ids.length) {
        clearInterval(this.pollTimer);
        this.pollTimer = null;
        return;
      }
      for (const id of ids) {
        try {
          const status = await request(`/api/v1/generate/status/${encodeURIComponent(id)}`);
          this.handle({ type: status.status === "processing" || status.status === "queued" ? "progress" : status.status, ...status });
        } catch (error) {
          this.detail(id, describeError(error));
        }
      }
    }, POLL_MS);
  }

  // --- rendering ---

  handle(message) {
    const job = this.jobs.get(message.request_id);
    if (!job || job.done) return;
    job.heard = true;
    if (message.type === "progress") return this.update(message);
    if (message.type === "preview") return this.preview(job.card, message);
    if (message.type === "completed") return this.complete(message.request_id, message.result);
    if (message.type === "failed") return this.finish(message.request_id, "failed", describeError(message.error));
    if (message.type === "cancelled") return this.finish(message.request_id, "cancelled", "Cancelled.");
    if (message.type === "error") return this.finish(message.request_id, "failed", describeError(message.error));
  }

  update(message) {
    const { card } = this.jobs.get(message.request_id);
    const progress = Math.max(0, Math.min(100, Math.round(message.progress || 0)));
    card.querySelector("progress").value = progress;
    this.state(card, message.status);
    const parts = [STEP_TEXT[message.current_step] || message.current_step || ""];
    if (message.status === "queued" && message.queue_position != null) parts.push(`position ${message.queue_position}`);
    parts.push(`${progress} %`);
    if (message.estimated_remaining_seconds != null) parts.push(`about ${formatSeconds(message.estimated_remaining_seconds)} left`);
    this.detail(message.request_id, parts.filter(Boolean).join(" · "));
  }

  preview(card, message) {
    const img = card.querySelector(".job-preview");
    img.src = message.image;
    img.width = message.width;
    img.height = message.height;
    img.hidden = false;
  }

  async complete(requestId, result) {
    const job = this.jobs.get(requestId);
    job.done = true;
    const { card } = job;
    card.querySelector("progress").value = 100;
    this.state(card, "completed");
    this.detail(requestId, `100 % · ${result.metadata.resolution}, ${result.metadata.duration_seconds} s`);
    card.querySelector(".job-cancel").hidden = true;
    await this.onCompleted(requestId, result); // the gallery shows it now: the queue lets it go
    this.remove(requestId);
  }

  finish(requestId, state, text) {
    const job = this.jobs.get(requestId);
    job.done = true;
    this.state(job.card, state);
    job.card.querySelector(".job-cancel").hidden = true;
    job.card.querySelector(".job-preview").hidden = true;
    const dismiss = job.card.querySelector(".job-dismiss");
    dismiss.hidden = false;
    dismiss.addEventListener("click", () => this.remove(requestId), { once: true });
    this.detail(requestId, text);
    if (state === "failed") job.card.querySelector(".job-detail").classList.add("error-text");
  }

  state(card, status) {
    const chip = card.querySelector(".job-state");
    if (chip.dataset.state && chip.dataset.state !== status) {
      announce(`${card.querySelector(".job-title").textContent}: ${(STATE_TEXT[status] || status).toLowerCase()}`);
    }
    chip.textContent = STATE_TEXT[status] || status;
    chip.dataset.state = status;
    card.dataset.state = status;
  }

  detail(requestId, text) {
    const job = this.jobs.get(requestId);
    if (job) job.card.querySelector(".job-detail").textContent = text;
  }
}

export function formatSeconds(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (seconds < 10) return `${Math.max(0, seconds).toFixed(1)} s`;
  return s < 60 ? `${s} s` : `${Math.floor(s / 60)} min ${s % 60} s`;
}
