// Visualizr Studio: wires the key bar, the Create form, the queue and the gallery together.

import { apiKey, catalog, describeError, onUnauthorized, request, videoIdOf } from "./api.js";
import { CharacterPanel } from "./characters.js";
import { CreateForm } from "./forms.js";
import { Gallery } from "./gallery.js";
import { JobBoard } from "./jobs.js";
import { $, announce } from "./ui.js";

const form = new CreateForm();
let lastSeed = null;

const gallery = new Gallery({ onRerun: (details) => form.fill(details).then(() => $("submit").focus()) });
const jobs = new JobBoard($("job-list"), {
  onCompleted: async (requestId, result) => {
    await gallery.load(0).catch(() => {});
    characterPanel.load().catch(() => {}); // its video count
    announce("Done: the video is first in the gallery.");
    try {
      const details = await gallery.describe(videoIdOf(result.video_url));
      lastSeed = details.parameters.seed;
      $("seed-reuse").disabled = false;
      $("seed-hint").textContent = `Empty: a new random seed each time. Last video's seed: ${lastSeed}.`;
    } catch {
      /* the seed stays unknown: "Reuse" stays off */
    }
  },
});

// The character form's picker lists the registry (the catalogue's built-ins until it is loaded).
const characterHints = { ...catalog.characters };
function pickCharacters(characters) {
  const picker = $("f-character_id");
  const chosen = picker.value;
  picker.replaceChildren(...characters.map((c) => new Option(c.builtin ? c.character_id : `${c.name} (${c.character_id})`, c.character_id)));
  for (const c of characters) characterHints[c.character_id] = c.description;
  if (characters.some((c) => c.character_id === chosen)) picker.value = chosen;
  picker.dispatchEvent(new Event("change"));
}
const characterPanel = new CharacterPanel({ onChange: pickCharacters });

// --- API key ---

function showKeyPanel(open, message = "") {
  $("key-panel").hidden = !open;
  $("key-button").setAttribute("aria-expanded", String(open));
  $("key-status").textContent = message;
  if (open) $("key-input").focus();
}

$("key-button").addEventListener("click", () => showKeyPanel($("key-panel").hidden, apiKey.get() ? "A key is saved in this browser." : ""));
$("key-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  apiKey.set($("key-input").value.trim());
  $("key-input").value = "";
  $("key-status").textContent = apiKey.get() ? "Saved. Checking…" : "No key saved.";
  if (await start()) showKeyPanel(false);
  else $("key-status").textContent = "That key was not accepted.";
});
$("key-forget").addEventListener("click", () => {
  apiKey.set("");
  $("key-status").textContent = "Forgotten: this browser holds no key now.";
});
onUnauthorized((error) => showKeyPanel(true, describeError(error)));

// --- Create ---

const tabs = [...document.querySelectorAll('[role="tab"]')];
function selectTab(tab, focus = false) {
  for (const other of tabs) {
    const selected = other === tab;
    other.setAttribute("aria-selected", String(selected));
    other.tabIndex = selected ? 0 : -1;
  }
  $("create-form").setAttribute("aria-labelledby", tab.id);
  form.setKind(tab.dataset.kind);
  clearError();
  if (focus) tab.focus();
}
tabs.forEach((tab, i) => {
  tab.addEventListener("click", () => selectTab(tab));
  tab.addEventListener("keydown", (event) => {
    const step = { ArrowRight: 1, ArrowLeft: -1, Home: -i, End: tabs.length - 1 - i }[event.key];
    if (step === undefined) return;
    event.preventDefault();
    selectTab(tabs[(i + step + tabs.length) % tabs.length], true);
  });
});

$("f-model").addEventListener("change", () => form.renderParameters());
$("seed-random").addEventListener("click", () => {
  $("f-seed").value = "";
  $("f-seed").focus();
});
$("seed-reuse").addEventListener("click", () => {
  if (lastSeed !== null) $("f-seed").value = lastSeed;
});

const drop = $("drop");
$("f-image").addEventListener("change", (event) => form.setImage(event.target.files[0] || null));
for (const type of ["dragenter", "dragover"]) {
  drop.addEventListener(type, (event) => {
    event.preventDefault();
    drop.classList.add("over");
  });
}
for (const type of ["dragleave", "drop"]) drop.addEventListener(type, () => drop.classList.remove("over"));
drop.addEventListener("drop", (event) => {
  event.preventDefault();
  const file = [...event.dataTransfer.files].find((f) => f.type.startsWith("image/"));
  if (file) form.setImage(file);
});

function clearError() {
  $("form-error").hidden = true;
  document.querySelectorAll('#create-form [aria-invalid="true"]').forEach((input) => input.removeAttribute("aria-invalid"));
}

const FIELD_INPUTS = { resolution: "f-width", num_frames: "f-duration_seconds", prompt: "f-prompt", image: "f-image" };
function showError(error) {
  const box = $("form-error");
  box.textContent = describeError(error);
  box.hidden = false;
  const field = error.details && error.details.field;
  const input = field && ($(FIELD_INPUTS[field] || `f-${field}`) || $(`f-${field}`));
  if (input && input.offsetParent !== null) {
    input.setAttribute("aria-invalid", "true");
    input.closest("details")?.setAttribute("open", "");
    input.focus();
  } else if (field === "image") {
    $("drop").focus();
  }
}

$("create-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  clearError();
  const button = $("submit");
  button.disabled = true;
  try {
    const [path, body] = form.build();
    const accepted = await request(path, { method: "POST", ...body });
    jobs.add(accepted, form.title());
    announce("Submitted: progress and a live preview are in the queue panel.");
  } catch (error) {
    showError(error);
  } finally {
    button.disabled = false;
  }
});

// --- start ---

function fillCatalog() {
  const characters = $("f-character_id");
  characters.replaceChildren(...Object.keys(catalog.characters).map((id) => new Option(id, id)));
  const describe = () => ($("character-hint").textContent = characterHints[characters.value] || "");
  characters.addEventListener("change", describe);
  describe();
  const lists = { "l-actions": "actions", "l-emotions": "emotions", "l-backgrounds": "backgrounds" };
  for (const [id, key] of Object.entries(lists)) $(id).replaceChildren(...catalog[key].map((word) => new Option(word)));
  for (const [field, word] of Object.entries(catalog.defaults)) $(`f-${field}`).placeholder = word;
  $("f-prompt").maxLength = catalog.max_prompt_chars;
  $("f-motion_prompt").maxLength = catalog.max_prompt_chars;
}

async function health() {
  const chip = $("health");
  try {
    const body = await request("/api/v1/health");
    chip.textContent = `Server ${body.status}`;
    chip.dataset.state = body.status;
  } catch (error) {
    chip.textContent = error.status === 503 ? "Server unhealthy" : "Server unreachable";
    chip.dataset.state = "unhealthy";
  }
}

/** Load what needs the API (models, gallery); false when the key is missing or wrong. */
async function start() {
  try {
    await form.loadModels();
    gallery.setModels(form.summaries);
    await gallery.load(0);
    await characterPanel.load();
    jobs.connect(); // the socket is open (and has asked for previews) before the first job starts
    return true;
  } catch (error) {
    $("model-hint").textContent = describeError(error);
    return false;
  }
}

fillCatalog();
form.setKind("text");
health();
start();
