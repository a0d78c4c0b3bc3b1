// One asset: status, renditions and tracks, a preview player, the thumbnail
// strip, the catalog titles it plays in (edited here) and their artwork.

import { api } from "../api.js";
import { badge, field, h, replace, say, when } from "../dom.js";
import { follow } from "../events.js";
import { play } from "../player.js";
import { remove } from "./assets.js";

export const title = "Asset";

const ARTWORK_KINDS = ["poster", "backdrop", "logo", "thumbnail"];

function kbps(bits) {
  return bits ? `${Math.round(bits / 1000)} kb/s` : "";
}

// The probed master in one line: what the content team checks at a glance.
function source(probed) {
  if (!probed) return "–";
  const parts = [];
  if (probed.width) parts.push(`${probed.width}×${probed.height}`);
  if (probed.video_codec) parts.push(probed.video_codec);
  if (probed.fps) parts.push(`${Math.round(probed.fps * 100) / 100} fps`);
  if (probed.video_bitrate) parts.push(kbps(probed.video_bitrate));
  const audio = probed.audio_tracks?.length ?? 0;
  parts.push(`${audio} audio track${audio === 1 ? "" : "s"}`);
  if (probed.size_bytes) parts.push(`${(probed.size_bytes / 2 ** 20).toFixed(1)} MiB`);
  return parts.join(" · ");
}

function renditions(asset) {
  // A language column only when some rendition has one (audio and subtitles do).
  const languages = asset.renditions.some((r) => r.language);
  const headings = ["Name", "Type", "Size", "Bandwidth", "Codecs",
                    ...(languages ? ["Language"] : [])];
  const rows = asset.renditions.map((r) => h("tr", {},
    h("td", {}, r.name || ""), h("td", {}, r.type || "video"),
    h("td", {}, r.width ? `${r.width}×${r.height}` : ""),
    h("td", {}, kbps(r.bandwidth)), h("td", {}, r.codecs || ""),
    languages ? h("td", {}, r.language || "") : null));
  return h("table", { id: "renditions" },
           h("thead", {}, h("tr", {}, headings.map((t) => h("th", { scope: "col" }, t)))),
           h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: headings.length },
                                                                "None yet."))));
}

function tracks(items) {
  if (!items.length) return h("p", { class: "muted" }, "No sidecar audio or subtitle tracks.");
  return h("table", { id: "tracks" },
           h("thead", {}, h("tr", {}, ["Kind", "Language", "Name"].map(
             (t) => h("th", { scope: "col" }, t)))),
           h("tbody", {}, items.map((t) => h("tr", {}, h("td", {}, t.kind),
                                             h("td", {}, t.language || ""),
                                             h("td", {}, t.name || "")))));
}

// One JPEG sprite of `count` tiles in a row; each tile is drawn from it at its offset.
function thumbnails(sprite) {
  const scale = 160 / sprite.width;
  // Focusable: a strip wider than the page scrolls with the arrow keys too.
  const strip = h("div", { class: "strip", id: "thumbnails", role: "list", tabindex: 0,
                           "aria-label": `${sprite.count} thumbnails, one every`
                             + ` ${sprite.interval_s} s` });
  for (let i = 0; i < sprite.count; i += 1) {
    const tile = h("div", { role: "listitem", title: `${Math.round(i * sprite.interval_s)} s` });
    Object.assign(tile.style, {
      width: `${sprite.width * scale}px`, height: `${sprite.height * scale}px`, flex: "none",
      backgroundImage: `url("${encodeURI(sprite.url)}")`,
      backgroundSize: `${sprite.width * sprite.count * scale}px auto`,
      backgroundPosition: `-${i * sprite.width * scale}px 0`,
    });
    strip.append(tile);
  }
  return strip;
}

function titleEditor(entry, refresh) {
  const name = h("input", { type: "text", value: entry.name, required: true, maxlength: 500 });
  const description = h("textarea", { maxlength: 5000 });
  description.value = entry.description || "";
  const kind = h("select", {}, ARTWORK_KINDS.map((k) => h("option", { value: k }, k)));
  const image = h("input", { type: "file", accept: "image/jpeg,image/png,image/webp" });
  const saveForm = h("form", { class: "catalog-title" }, ...field("Name", name),
                     ...field("Description", description),
                     h("button", { type: "submit" }, "Save"));
  saveForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    await api(`/v1/catalog/titles/${entry.id}`, { method: "PATCH",
      json: { name: name.value, description: description.value } });
    say(`Saved ${name.value}.`);
    refresh();
  });
  const artForm = h("form", {}, ...field("Artwork kind", kind), ...field("Image", image),
                    h("button", { type: "submit", class: "secondary" }, "Upload artwork"));
  artForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    const file = image.files[0];
    if (!file) { say("Choose an image first."); return; }
    await api(`/v1/catalog/titles/${entry.id}/artwork/${kind.value}`, {
      method: "PUT", body: file, headers: { "Content-Type": file.type } });
    say(`Artwork stored for ${entry.name}.`);
    refresh();
  });
  const art = Object.entries(entry.artwork || {}).map(([k, a]) => {
    const sizes = a?.sizes ? Object.values(a.sizes) : [];
    const smallest = sizes.length ? sizes[0] : null;
    return smallest?.url ? h("img", { src: smallest.url, alt: `${k} of ${entry.name}`,
                                      height: 90 }) : null;
  });
  return h("div", { class: "card" }, h("h3", {}, entry.name),
           h("p", { class: "muted" }, `${entry.kind} · revision ${entry.revision}`),
           h("div", { class: "row" }, art), saveForm, artForm);
}

async function catalog(section, assetId, assetTitle) {
  const found = [];
  let url = "/v1/catalog/titles?limit=100";
  while (url && found.length < 20) {
    const page = await api(url);
    found.push(...page.items.filter((t) => (t.assets || []).some((a) => a.id === assetId)));
    url = page.next;
  }
  const refresh = () => catalog(section, assetId, assetTitle);
  const name = h("input", { type: "text", value: assetTitle || "", required: true });
  const create = h("form", { class: "card" }, h("h3", {}, "Add a catalog title"),
                   ...field("Title name", name),
                   h("button", { type: "submit", class: "secondary" },
                     "Create and link as the main asset"));
  create.addEventListener("submit", async (e) => {
    e.preventDefault();
    const made = await api("/v1/catalog/titles", { method: "POST",
                                                   json: { kind: "movie", name: name.value } });
    await api(`/v1/catalog/titles/${made.id}/assets/${assetId}`, { method: "PUT",
                                                                   json: { role: "main" } });
    say(`Created ${made.name}.`);
    refresh();
  });
  replace(section, h("h2", {}, "Catalog"),
          found.length ? found.map((t) => titleEditor(t, refresh))
                       : h("p", { class: "muted" }, "No catalog title plays this asset yet."),
          create);
}

export async function render(main, { params, go, cleanup }) {
  const [assetId] = params;
  const asset = await api(`/v1/assets/${assetId}`);
  document.title = `${asset.title || asset.id} · stb-origin console`;
  const status = h("div", { id: "asset-status", "aria-live": "polite" });
  const player = h("section", { class: "card", "aria-labelledby": "preview-h" });
  const details = h("div");
  const catalogSection = h("section", { id: "catalog" });
  let preview = null;
  cleanup(() => preview?.stop());

  function showStatus(a) {
    replace(status, badge(a.status), " ",
            a.status === "processing" || a.status === "queued"
              ? [h("progress", { max: 100, value: a.progress, "aria-label": "Processing" }),
                 `${a.progress}%`] : null,
            a.error ? h("p", { class: "error", id: "asset-error" },
                        a.error.message || a.error.code) : null);
  }

  function showDetails(a) {
    replace(details,
      h("dl", { class: "facts card" },
        h("dt", {}, "Id"), h("dd", {}, a.id),
        h("dt", {}, "Length"), h("dd", {}, a.duration_s ? `${a.duration_s.toFixed(1)} s` : "–"),
        h("dt", {}, "Uploaded"), h("dd", {}, when(a.created_at)),
        h("dt", {}, "Source"), h("dd", {}, source(a.source))),
      h("h2", {}, "Renditions"), h("div", { class: "card" }, renditions(a)),
      a.thumbnails ? [h("h2", {}, "Thumbnails"), h("div", { class: "card" },
                                                    thumbnails(a.thumbnails))] : null);
  }

  async function showPlayer(a) {
    if (a.status !== "ready" || preview) {
      if (a.status !== "ready") {
        replace(player, h("h2", { id: "preview-h" }, "Preview"),
                h("p", { class: "muted" }, "The preview plays once the asset is ready."));
      }
      return;
    }
    const video = h("video", { id: "preview", controls: true, muted: true, playsinline: true,
                               "aria-label": `Preview of ${a.title || a.id}` });
    replace(player, h("h2", { id: "preview-h" }, "Preview"), video);
    preview = await play(video, a.playback.hls, a.id);
  }

  const trackSection = h("section", {}, h("h2", {}, "Audio and subtitle tracks"),
                         h("div", { class: "card", id: "tracks-card" }));
  replace(main,
          h("div", { class: "row" }, h("h1", { id: "asset-title" }, asset.title || "(untitled)"),
            h("button", { class: "danger small", type: "button", id: "delete-asset",
                          onclick: async () => { if (await remove(asset)) go("#/assets"); } },
              "Delete")),
          status, h("div", { class: "grid" }, player, details), trackSection, catalogSection);
  showStatus(asset);
  showDetails(asset);
  // The player loads hls.js (the page's largest file) beside the rest, not before it.
  showPlayer(asset).catch((error) => {
    player.append(h("p", { class: "error", role: "alert" }, `The preview failed: ${error.message}`));
  });
  const [trackList] = await Promise.all([
    api(`/v1/assets/${assetId}/tracks`),
    catalog(catalogSection, assetId, asset.title),
  ]);
  replace(document.getElementById("tracks-card"), tracks(trackList.items));

  const events = follow(`assets:${assetId}`, async (event) => {
    if (!event.resync && event.data.status === "deleted") {
      showStatus({ ...asset, status: "deleted", progress: 0, error: null });
      say(`${asset.title || asset.id} was deleted.`);
      events.stop();
      return;
    }
    if (!event.resync && event.data.status !== "ready" && event.data.status !== "failed") {
      showStatus({ ...asset, ...event.data, error: null });
      return;
    }
    const fresh = await api(`/v1/assets/${assetId}`);
    showStatus(fresh);
    showDetails(fresh);
    await showPlayer(fresh).catch(() => {});
    if (fresh.status === "ready") say(`${fresh.title || fresh.id} is ready to preview.`);
  });
  cleanup(() => events.stop());
}
