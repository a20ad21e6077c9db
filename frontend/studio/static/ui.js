// Small DOM helpers shared by the studio's modules.

export const $ = (id) => document.getElementById(id);

export function el(tag, props = {}) {
  return Object.assign(document.createElement(tag), props);
}

/** Tell screen readers about a change that is not where their focus is (one polite live region). */
export function announce(text) {
  const region = $("announce");
  region.textContent = "";
  setTimeout(() => (region.textContent = text), 50);
}
