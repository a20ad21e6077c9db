// The gallery: GET /api/v1/assets/videos with paging and filters, thumbnails with an animated preview on hover
// or focus, and a player dialog (the MP4 itself: the browser seeks with range requests) with the video's
// parameters, download, delete (confirmed) and re-run.

import { describeError, request, signed } from "./api.js";
import { formatSeconds } from "./jobs.js";
import { $, announce, el, formatBytes } from "./ui.js";

const PAGE_SIZE = 12;
const DETAILS_MAX_AGE_MS = 5 * 60 * 1000;

export class Gallery {
  constructor({ onRerun }) {
    this.onRerun = onRerun;
    this.offset = 0;
    this.filters = {};
    this.details = new Map(); // video id -> details (with signed URLs)
    this.current = null;
    $("page-prev").addEventListener("click", () => this.load(Math.max(0, this.offset - PAGE_SIZE)));
    $("page-next").addEventListener("click", () => this.load(this.offset + PAGE_SIZE));
    $("gallery-filters").addEventListener("submit", (event) => {
      event.preventDefault();
      const data = new FormData(event.target);
      this.filters = Object.fromEntries([...data].filter(([, v]) => v));
      this.load(0);
    });
    $("player").addEventListener("close", () => {
      $("player-video").removeAttribute("src");
      $("player-video").load();
    });
    $("player").querySelector("[data-close]").addEventListener("click", () => $("player").close());
    $("player-delete").addEventListener("click", () => this.confirmDelete());
    $("player-rerun").addEventListener("click", () => {
      $("player").close();
      this.onRerun(this.current);
    });
    $("player-video").addEventListener("error", () => this.videoFailed());
  }

  setModels(models) {
    const select = $("g-model");
    select.replaceChildren(new Option("All models", ""), ...models.map((m) => new Option(m.name, m.id)));
  }

  async load(offset = this.offset) {
    const status = $("gallery-status");
    let page;
    try {
      page = await request("/api/v1/assets/videos", { query: { limit: PAGE_SIZE, offset, ...this.filters } });
    } catch (error) {
      status.textContent = describeError(error);
      return;
    }
    this.offset = offset;
    const urls = await signed(page.videos.map((v) => v.thumbnail_url)).catch(() => ({}));
    $("gallery-grid").replaceChildren(...page.videos.map((video) => this.card(video, urls[video.thumbnail_url])));
    const last = offset + page.videos.length;
    status.textContent = page.total_count ? "" : "No videos yet. Make one with the form.";
    $("page-info").textContent = page.total_count ? `${offset + 1}–${last} of ${page.total_count}` : "";
    $("page-prev").disabled = offset === 0;
    $("page-next").disabled = !page.has_more;
  }

  card(video, thumbnail) {
    const card = $("card-template").content.firstElementChild.cloneNode(true);
    card.dataset.videoId = video.id;
    const img = card.querySelector("img");
    img.src = thumbnail || video.thumbnail_url;
    const thumb = card.querySelector(".thumb");
    thumb.setAttribute("aria-label", `Play “${video.prompt}”`);
    card.querySelector(".badge").textContent = formatSeconds(video.metadata.duration_seconds);
    card.querySelector(".card-prompt").textContent = video.prompt;
    card.querySelector(".card-meta").textContent = [
      video.metadata.resolution,
      `${video.metadata.fps} fps`,
      formatBytes(video.metadata.file_size_bytes),
      new Date(video.created_at).toLocaleString(),
    ].join(" · ");
    const still = img.src;
    const animate = async () => {
      const details = await this.describe(video.id).catch(() => null);
      if (details && img.dataset.hover === "1") img.src = details.urls[details.preview_gif_url];
    };
    const rest = () => {
      img.dataset.hover = "0";
      img.src = still;
    };
    for (const start of ["pointerenter", "focus"]) thumb.addEventListener(start, () => ((img.dataset.hover = "1"), animate()));
    for (const stop of ["pointerleave", "blur"]) thumb.addEventListener(stop, rest);
    thumb.addEventListener("click", () => this.open(video.id));
    return card;
  }

  /** The video's details, with usable (signed) URLs of its three files; cached for a few minutes (tickets last
   *  ten). */
  async describe(videoId, fresh = false) {
    const cached = this.details.get(videoId);
    if (fresh || !cached || Date.now() - cached.fetchedAt > DETAILS_MAX_AGE_MS) {
      const details = await request(`/api/v1/assets/videos/${encodeURIComponent(videoId)}`);
      details.urls = await signed([details.url, details.thumbnail_url, details.preview_gif_url]);
      details.fetchedAt = Date.now();
      this.details.set(videoId, details);
    }
    return this.details.get(videoId);
  }

  async open(videoId) {
    let details;
    try {
      details = await this.describe(videoId, true);
    } catch (error) {
      $("gallery-status").textContent = describeError(error);
      return;
    }
    this.current = details;
    $("player-title").textContent = details.prompt;
    $("player-status").hidden = true;
    const video = $("player-video");
    video.poster = details.urls[details.thumbnail_url];
    video.src = details.urls[details.url];
    video.setAttribute("aria-label", `Video: ${details.prompt}`);
    const download = $("player-download");
    download.href = details.urls[details.url];
    download.download = `${details.id}.mp4`;
    $("player-details").replaceChildren(...detailRows(details));
    $("player").showModal();
    video.play().catch(() => {});
  }

  async videoFailed() {
    // A ticket may have expired while the dialog stayed open: sign again once, keep the position.
    const video = $("player-video");
    if (!this.current || !video.getAttribute("src") || video.dataset.retried === this.current.id) {
      $("player-status").textContent = "The video cannot be played.";
      $("player-status").hidden = false;
      return;
    }
    video.dataset.retried = this.current.id;
    const at = video.currentTime;
    const details = await this.describe(this.current.id, true).catch(() => null);
    if (!details) return;
    video.src = details.urls[details.url];
    video.currentTime = at;
  }

  confirmDelete() {
    const dialog = $("confirm");
    dialog.returnValue = "";
    dialog.addEventListener(
      "close",
      async () => {
        if (dialog.returnValue !== "delete") return;
        const { id, prompt } = this.current;
        try {
          await request(`/api/v1/assets/videos/${encodeURIComponent(id)}`, { method: "DELETE" });
        } catch (error) {
          $("player-status").textContent = describeError(error);
          $("player-status").hidden = false;
          return;
        }
        $("player").close();
        this.details.delete(id);
        announce(`Deleted “${prompt}”`);
        await this.load();
      },
      { once: true },
    );
    dialog.showModal();
  }
}

function detailRows(details) {
  const p = details.parameters;
  const m = details.metadata;
  const rows = [
    ["Prompt", details.prompt],
    ["Negative prompt", details.negative_prompt || "—"],
    ["Style", details.style || "—"],
    ["Model", details.model],
    ["Size", `${p.width}×${p.height}, ${p.num_frames} frames at ${p.fps} fps`],
    ["Steps · guidance", `${p.num_inference_steps} · ${p.guidance_scale}`],
    ["Seed", String(p.seed)],
  ];
  if (p.strength != null) rows.push(["Motion strength", String(p.strength)]);
  rows.push(
    ["File", `${m.format}/${m.codec}, ${formatBytes(m.file_size_bytes)}, ${m.bitrate_kbps} kbit/s, ${m.duration_seconds} s`],
    ["Made", `${new Date(details.created_at).toLocaleString()} in ${formatSeconds(details.generation_info.processing_time_seconds)}`],
  );
  return rows.flatMap(([term, value]) => [el("dt", { textContent: term }), el("dd", { textContent: value })]);
}

