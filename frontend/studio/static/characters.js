// The Characters panel: the registry (/api/v1/characters) listed with its pictures, a form that adds a character
// with one to four pictures, and Delete for the characters that are not built in. `onChange(characters)` hears
// every new list (the character form's picker follows it).

import { apiKey, describeError, request } from "./api.js";
import { $, announce, el } from "./ui.js";

const LIST_LIMIT = 100;

/** A picture the API serves, as a blob: URL (fetched with the key: an <img src> cannot send it). */
async function pictureUrl(path) {
  const headers = apiKey.get() ? { Authorization: `Bearer ${apiKey.get()}` } : {};
  const response = await fetch(path, { headers });
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return URL.createObjectURL(await response.blob());
}

export class CharacterPanel {
  constructor({ onChange }) {
    this.onChange = onChange;
    this.characters = [];
    $("character-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.create();
    });
  }

  async load() {
    const body = await request("/api/v1/characters", { query: { limit: LIST_LIMIT } });
    this.characters = body.characters;
    $("characters-status").textContent = `${body.total_count} character${body.total_count === 1 ? "" : "s"}`;
    $("character-list").replaceChildren(...this.characters.map((character) => this.card(character)));
    this.onChange(this.characters);
  }

  card(character) {
    const item = el("li", { className: "card character" });
    item.dataset.characterId = character.character_id;
    const pictures = el("div", { className: "character-pictures" });
    for (const [i, path] of character.reference_image_urls.entries()) {
      const img = el("img", { alt: `${character.name}, picture ${i + 1}`, width: 80, height: 80 });
      pictureUrl(path).then((url) => (img.src = url)).catch(() => (img.alt = `${img.alt} (not available)`));
      pictures.append(img);
    }
    const uses = `${character.video_count} video${character.video_count === 1 ? "" : "s"}`;
    item.append(
      pictures,
      el("p", { className: "card-prompt", textContent: `${character.name} (${character.character_id})` }),
      el("p", { className: "card-meta muted", textContent: `${character.builtin ? "built in · " : ""}${uses}` }),
    );
    if (!character.builtin) {
      const remove = el("button", { type: "button", className: "danger character-delete", textContent: "Delete" });
      remove.setAttribute("aria-label", `Delete ${character.name}`);
      remove.addEventListener("click", () => this.remove(character));
      item.append(remove);
    }
    return item;
  }

  async create() {
    const box = $("character-error");
    box.hidden = true;
    const form = $("character-form");
    const data = new FormData();
    for (const name of ["name", "description", "character_id"]) {
      const value = form.elements[name].value.trim();
      if (value) data.append(name, value);
    }
    for (const file of $("c-images").files) data.append("images", file);
    $("character-create").disabled = true;
    try {
      const made = await request("/api/v1/characters", { method: "POST", form: data });
      form.reset();
      announce(`Character ${made.name} added.`);
      await this.load();
    } catch (error) {
      box.textContent = describeError(error);
      box.hidden = false;
    } finally {
      $("character-create").disabled = false;
    }
  }

  async remove(character) {
    try {
      await request(`/api/v1/characters/${encodeURIComponent(character.character_id)}`, { method: "DELETE" });
      announce(`Character ${character.name} deleted; its videos stay.`);
      await this.load();
    } catch (error) {
      $("characters-status").textContent = describeError(error);
    }
  }
}
