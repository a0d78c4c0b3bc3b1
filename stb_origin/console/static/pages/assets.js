// The asset list: live status and progress from the event stream, the cause of a
// failure in words, retry and delete.

import { api } from "../api.js";
import { badge, h, replace, say, when } from "../dom.js";
import { follow } from "../events.js";

export const title = "Assets";

function statusCell(asset) {
  const cell = h("td", { "data-status": asset.status }, badge(asset.status));
  if (asset.status === "queued" || asset.status === "processing") {
    cell.append(h("progress", { max: 100, value: asset.progress,
                                "aria-label": `Processing ${asset.title || asset.id}` }),
                h("span", { class: "muted" }, `${asset.progress}%`));
  }
  if (asset.error) {
    cell.append(h("p", { class: "error" }, asset.error.message || asset.error.code));
  }
  return cell;
}

export async function remove(asset) {
  if (!confirm(`Delete "${asset.title || asset.id}"? Its stream, source and keys go too.`)) {
    return false;
  }
  await api(`/v1/assets/${asset.id}`, { method: "DELETE" });
  say(`Deleted ${asset.title || asset.id}.`);
  return true;
}

function row(asset, reload) {
  const name = asset.title || "(untitled)";
  const actions = h("td", { class: "row" });
  if (asset.status === "failed") {
    // Once its cause is fixed (a full disk, a storage outage): a fresh round of attempts.
    actions.append(h("button", { class: "secondary small", type: "button",
                                 "aria-label": `Retry ${name}`,
                                 onclick: async () => {
                                   await api(`/v1/assets/${asset.id}/retry`, { method: "POST" });
                                   say(`Queued ${name} again.`);
                                   reload();
                                 } },
                     "Retry"));
  }
  actions.append(h("button", { class: "danger small", type: "button",
                               "aria-label": `Delete ${name}`,
                               onclick: async () => { if (await remove(asset)) reload(); } },
                   "Delete"));
  return h("tr", { id: `asset-${asset.id}` },
           h("td", {}, h("a", { href: `#/assets/${asset.id}` }, name)),
           statusCell(asset),
           h("td", {}, asset.duration_s ? `${asset.duration_s.toFixed(1)} s` : ""),
           h("td", {}, when(asset.created_at)),
           actions);
}

export async function render(main, { cleanup }) {
  const body = h("tbody");
  const table = h("table", {},
                  h("caption", { class: "muted" }, "Newest first; status updates live."),
                  h("thead", {}, h("tr", {}, ["Title", "Status", "Length", "Uploaded", ""]
                                   .map((t) => h("th", { scope: "col" }, t)))),
                  body);
  const more = h("p");
  replace(main, h("div", { class: "row" }, h("h1", {}, "Assets"),
                  h("a", { class: "button small", href: "#/upload" }, "Upload")),
          h("div", { class: "card" }, table), more);
  const byId = new Map();

  async function load(url = "/v1/assets?limit=50", append = false) {
    const page = await api(url);
    if (!append) { body.replaceChildren(); byId.clear(); }
    for (const asset of page.items) {
      byId.set(asset.id, asset);
      body.append(row(asset, () => load()));
    }
    if (!byId.size) body.append(h("tr", {}, h("td", { colspan: 5 }, "No assets yet.")));
    replace(more, page.next ? h("button", { class: "secondary", type: "button",
                                            onclick: () => load(page.next, true) }, "Show more")
                            : null);
  }

  await load();
  const events = follow("assets", (event) => {
    if (event.resync) { load(); return; }
    const change = event.data;
    const known = byId.get(change.asset);
    if (change.status === "deleted") { // by anyone: this page or another
      if (!known) return;
      byId.delete(known.id);
      document.getElementById(`asset-${known.id}`)?.remove();
      say(`${known.title || known.id} was deleted.`);
      return;
    }
    if (!known) { load(); return; } // a new upload: list it
    Object.assign(known, { status: change.status, progress: change.progress });
    if (change.status !== "failed") known.error = null;
    if (change.status === "ready" || change.status === "failed") {
      // the final record has the cause in words, the duration and more
      api(`/v1/assets/${known.id}`).then((fresh) => {
        byId.set(fresh.id, fresh);
        document.getElementById(`asset-${fresh.id}`)?.replaceWith(row(fresh, () => load()));
        say(`${fresh.title || fresh.id} is ${fresh.status}.`);
      }).catch(() => {});
      return;
    }
    document.getElementById(`asset-${known.id}`)?.replaceWith(row(known, () => load()));
  });
  cleanup(() => events.stop());
}
