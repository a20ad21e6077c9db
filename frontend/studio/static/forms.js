// The Create form: its fields, limits and defaults come from the model card (GET /api/v1/models/{id}), so a new
// model or a new parameter shows up without a change here. Three kinds share it: text, image, character.

import { catalog, request } from "./api.js";
import { $, el, formatBytes } from "./ui.js";

const LABELS = {
  width: "Width (px)",
  height: "Height (px)",
  num_frames: "Frames",
  fps: "Frames per second",
  num_inference_steps: "Denoising steps",
  guidance_scale: "Guidance scale",
  duration_seconds: "Duration (s)",
  motion_strength: "Motion strength",
  character_strength: "Character strength",
};
// Which card parameters each kind sends, and which of them stay out of the fold. Anything else the card lists
// is sent by the text kind (its body takes every card parameter) and shown under "Advanced settings".
const KIND_PARAMETERS = {
  text: { main: ["num_frames", "fps"], advanced: null },
  image: { main: ["fps"], advanced: ["width", "height", "num_inference_steps", "guidance_scale"] },
  character: { main: [], advanced: ["width", "height", "num_inference_steps", "character_strength"] }, // the last: IP-Adapter cards
};
const OPTIONAL_FOR_IMAGE = new Set(["width", "height"]); // blank: taken from the image's aspect ratio
const CHARACTER_ONLY = new Set(["character_strength"]); // card parameters the text body does not take

export class CreateForm {
  constructor() {
    this.kind = "text";
    this.cards = new Map(); // model id -> detail
    this.summaries = [];
    this.image = null;
    this.loaded = false; // until the first loadModels: say "loading", not "no model"
  }

  async loadModels() {
    const { models } = await request("/api/v1/models");
    this.summaries = models;
    await Promise.all(models.map((m) => this.card(m.id)));
    this.loaded = true;
    this.fillModelSelect();
  }

  async card(id) {
    if (!this.cards.has(id)) this.cards.set(id, await request(`/api/v1/models/${encodeURIComponent(id)}`));
    return this.cards.get(id);
  }

  supports(card, kind) {
    return kind !== "image" || Boolean(card.capabilities.supports_image_to_video);
  }

  fillModelSelect() {
    const select = $("f-model");
    const previous = select.value;
    select.replaceChildren(
      ...this.summaries
        .filter((m) => this.supports(this.cards.get(m.id), this.kind))
        .map((m) => new Option(`${m.name}${m.loaded ? "" : " (loads on first use)"}`, m.id)),
    );
    if ([...select.options].some((o) => o.value === previous)) select.value = previous;
    this.renderParameters();
  }

  setKind(kind) {
    this.kind = kind;
    document.querySelectorAll("#create-form [data-kinds]").forEach((el) => {
      el.hidden = !el.dataset.kinds.split(" ").includes(kind);
    });
    $("style-label").textContent = kind === "character" ? "Animation style" : "Style";
    this.fillModelSelect();
  }

  currentCard() {
    return this.cards.get($("f-model").value);
  }

  renderParameters() {
    const card = this.currentCard();
    const main = $("main-params");
    const advanced = $("advanced-params");
    main.replaceChildren();
    advanced.replaceChildren();
    if (!card) {
      $("model-hint").textContent = this.loaded ? "No model on this server can make this kind of video." : "Loading the models…";
      return;
    }
    $("model-hint").textContent = card.description;
    const caps = card.capabilities;
    fillStyles(caps.styles || []);
    const plan = KIND_PARAMETERS[this.kind];
    const params = card.parameters;
    const defaultDuration = params.num_frames && params.fps ? params.num_frames.default / params.fps.default : 2;
    if (this.kind !== "text") {
      main.append(
        numberField("duration_seconds", {
          min: caps.min_duration_seconds,
          max: caps.max_duration_seconds,
          default: round(defaultDuration, 2),
          description: "Length of the video",
          step: 0.1,
        }),
      );
    }
    if (this.kind === "image") {
      main.append(
        numberField("motion_strength", {
          min: 0.05,
          max: 1,
          default: catalog.default_motion_strength,
          description: "How far the video may move away from the image",
          step: 0.05,
        }),
      );
    }
    for (const [name, range] of Object.entries(params)) {
      const inMain = plan.main.includes(name);
      const inAdvanced = plan.advanced === null ? !inMain && !CHARACTER_ONLY.has(name) : plan.advanced.includes(name);
      if (!inMain && !inAdvanced) continue;
      const optional = this.kind === "image" && OPTIONAL_FOR_IMAGE.has(name);
      (inMain ? main : advanced).append(numberField(name, range, optional));
    }
    if (this.kind !== "character" && caps.supports_negative_prompt) {
      const field = el("div", { className: "field span2" });
      field.append(
        el("label", { htmlFor: "f-negative_prompt", textContent: "Negative prompt" }),
        el("textarea", { id: "f-negative_prompt", name: "negative_prompt", rows: 2, placeholder: "blurry, low quality" }),
      );
      advanced.prepend(field);
    }
    if (this.kind === "image" && caps.supports_end_image) {
      const field = el("div", { className: "field span2" });
      field.append(
        el("label", { htmlFor: "f-end_image", textContent: "End image (last frame)" }),
        el("input", { id: "f-end_image", name: "end_image", type: "file", accept: "image/*" }),
      );
      main.append(field);
    }
  }

  setImage(file) {
    this.image = file;
    const preview = $("drop-preview");
    if (preview.src) URL.revokeObjectURL(preview.src);
    preview.hidden = !file;
    if (file) preview.src = URL.createObjectURL(file);
    $("drop-text").textContent = file ? `${file.name} (${formatBytes(file.size)}) · drop another to replace` : "Drop an image here or choose a file (PNG, JPEG, WebP, GIF)";
  }

  /** The request of the current kind: [path, {json} | {form}]. */
  build() {
    const form = $("create-form");
    const value = (name) => (form.elements[name] ? form.elements[name].value.trim() : "");
    const number = (name) => (value(name) === "" ? undefined : Number(value(name)));
    const seed = number("seed");
    const model = value("model") || undefined;
    const params = Object.fromEntries(
      [...form.querySelectorAll("[data-param]")].map((input) => [input.name, number(input.name)]),
    );
    if (this.kind === "text") {
      const body = { prompt: value("prompt"), model, seed, style: value("style") || undefined, ...params };
      if (value("negative_prompt")) body.negative_prompt = value("negative_prompt");
      return ["/api/v1/generate/video", { json: compact(body) }];
    }
    if (this.kind === "image") {
      const data = new FormData();
      if (this.image) data.append("image", this.image, this.image.name);
      const end = form.elements.end_image?.files[0];
      if (end) data.append("end_image", end, end.name);
      const fields = compact({ motion_prompt: value("motion_prompt"), model, seed, ...params, negative_prompt: value("negative_prompt") || undefined });
      for (const [key, v] of Object.entries(fields)) data.append(key, String(v));
      return ["/api/v1/generate/video/from-image", { form: data }];
    }
    const { width, height, ...rest } = params;
    const body = {
      character_id: value("character_id"),
      action: value("action") || undefined,
      emotion: value("emotion") || undefined,
      background: value("background") || undefined,
      animation_style: value("style") || undefined,
      resolution: width && height ? `${width}x${height}` : undefined,
      model,
      seed,
      ...rest,
    };
    return ["/api/v1/generate/character-animation", { json: compact(body) }];
  }

  /** A short title for the queue: the prompt, or the character and action. */
  title() {
    const form = $("create-form").elements;
    if (this.kind === "character") return `${form.character_id.value} · ${form.action.value || catalog.defaults.action}`;
    return (this.kind === "image" ? form.motion_prompt.value : form.prompt.value).trim() || "(no prompt)";
  }

  /** Fill the form from a gallery video's details (re-run). */
  async fill(video) {
    const image = video.parameters.strength !== undefined && video.parameters.strength !== null;
    const kind = image ? "image" : "text";
    document.getElementById(`tab-${kind}`).click();
    const form = $("create-form").elements;
    if ([...form.model.options].some((o) => o.value === video.model)) form.model.value = video.model;
    this.renderParameters();
    form[image ? "motion_prompt" : "prompt"].value = video.prompt;
    if (form.negative_prompt) form.negative_prompt.value = video.negative_prompt || "";
    if (!image && [...form.style.options].some((o) => o.value === (video.style || ""))) form.style.value = video.style || "";
    for (const [name, v] of Object.entries(video.parameters)) {
      if (name === "seed") form.seed.value = v;
      else if (name === "strength" && form.motion_strength) form.motion_strength.value = v;
      else if (form[name] && form[name].dataset.param !== undefined) form[name].value = v;
    }
    if (image && form.duration_seconds) form.duration_seconds.value = round(video.parameters.num_frames / video.parameters.fps, 2);
    $("advanced").open = true;
  }
}

/** The style picker: "None" and the styles the model takes (its card's capabilities.styles). */
function fillStyles(styles) {
  const select = $("f-style");
  const previous = select.value;
  select.replaceChildren(new Option("None", ""), ...styles.map((name) => new Option(name, name)));
  select.disabled = styles.length === 0;
  if (styles.includes(previous)) select.value = previous;
  $("style-hint").textContent = styles.length
    ? "Shapes the prompt and the negative prompt (see the README's style table)."
    : "This model takes no prompt, so no style.";
}

function numberField(name, range, optional = false) {
  const integer = Number.isInteger(range.min) && Number.isInteger(range.max) && Number.isInteger(range.default) && !range.step;
  const step = range.step || range.multiple_of || (integer ? 1 : 0.1);
  const hintId = `hint-${name}`;
  const field = el("div", { className: "field" });
  const input = el("input", {
    id: `f-${name}`,
    name,
    type: "number",
    min: range.min,
    max: range.max,
    step,
    inputMode: integer ? "numeric" : "decimal",
  });
  input.dataset.param = "";
  input.setAttribute("aria-describedby", hintId);
  if (optional) input.placeholder = "from the image";
  else input.value = range.default;
  const limits = `${range.min}–${range.max}${range.multiple_of ? `, a multiple of ${range.multiple_of}` : ""}; default ${optional ? "from the image" : range.default}`;
  field.append(
    el("label", { htmlFor: input.id, textContent: LABELS[name] || humanize(name) }),
    input,
    el("p", { className: "hint", id: hintId, textContent: `${range.description ? `${range.description}. ` : ""}${limits}` }),
  );
  return field;
}

const humanize = (name) => name.replace(/_/g, " ").replace(/^./, (c) => c.toUpperCase());
const round = (x, digits) => Math.round(x * 10 ** digits) / 10 ** digits;
const compact = (obj) => Object.fromEntries(Object.entries(obj).filter(([, v]) => v !== undefined && v !== ""));
