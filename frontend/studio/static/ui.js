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

export function formatBytes(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}
