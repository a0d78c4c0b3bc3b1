// Building the pages: every text from the API goes in as a text node (never as
// HTML), so a title like <img src=x onerror=...> shows as those characters.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (name === "class") el.className = value;
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

// The polite live region under the header: what just happened, for everyone.
export function say(text) {
  document.getElementById("status").textContent = text;
}

export function badge(status) {
  return h("span", { class: `badge ${status}` }, status.replace("_", " "));
}

export function when(iso) {
  return iso ? new Date(iso).toLocaleString() : "";
}

export function field(label, input) {
  const id = input.id || `f-${Math.random().toString(36).slice(2)}`;
  input.id = id;
  return [h("label", { for: id }, label), input];
}
