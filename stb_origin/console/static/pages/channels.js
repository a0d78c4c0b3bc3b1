// Channels: status and active source, a live preview, and today's guide.

import { api, ApiError } from "../api.js";
import { badge, h, replace } from "../dom.js";
import { follow } from "../events.js";
import { play } from "../player.js";

export const title = "Channels";

function time(iso) {
  return new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

export async function render(main, { cleanup }) {
  let channels;
  try {
    channels = (await api("/v1/channels?limit=100")).items;
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 403) throw error;
    replace(main, h("h1", {}, "Channels"),
            h("p", { class: "muted" }, "Channels are run by admins."));
    return;
  }
  const today = new Date();
  today.setHours(0, 0, 0, 0);
  const tomorrow = new Date(today.getTime() + 86_400_000);
  const guide = await api(`/v1/guide?${new URLSearchParams({
    from: today.toISOString(), to: tomorrow.toISOString() })}`);
  const programmes = new Map(guide.channels.map((c) => [c.id, c.programmes]));
  let preview = null;
  cleanup(() => preview?.stop());
  const player = h("section", { class: "card", "aria-labelledby": "live-h" },
                   h("h2", { id: "live-h" }, "Live preview"),
                   h("p", { class: "muted" }, "Choose a channel's Preview button."));

  async function watch(channel) {
    preview?.stop();
    const video = h("video", { id: "live-preview", controls: true, muted: true,
                               playsinline: true, "aria-label": `Live: ${channel.name}` });
    replace(player, h("h2", { id: "live-h" }, `Live: ${channel.name}`), video);
    preview = await play(video, channel.playback.hls, channel.id);
  }

  const cards = channels.map((c) => {
    const listed = (programmes.get(c.id) || []).map((p) => h("li", {},
      h("strong", {}, `${time(p.start)}–${time(p.end)} `), p.title));
    return h("article", { class: "card", id: `channel-${c.id}` },
      h("h2", {}, `${c.number ?? ""} ${c.name}`.trim()),
      h("p", { class: "channel-status" }, badge(c.status), " ",
        c.active_source !== null && c.active_source !== undefined
          ? `source ${Number(c.active_source) + 1} of ${c.sources?.length ?? "?"}` : ""),
      c.error ? h("p", { class: "error" }, c.error.message || c.error.code || String(c.error))
              : null,
      h("button", { type: "button", class: "secondary small",
                    onclick: () => watch(c) }, `Preview ${c.name}`),
      h("h3", {}, "Today"),
      listed.length ? h("ol", { class: "guide" }, listed)
                    : h("p", { class: "muted" }, "No guide for today."));
  });
  replace(main, h("h1", {}, "Channels"), player,
          cards.length ? h("div", { class: "grid" }, cards)
                       : h("p", { class: "muted" }, "No channels yet."));
  const events = follow("channels", async (event) => {
    if (event.resync) return;
    const fresh = await api(`/v1/channels/${event.data.channel || event.key}`).catch(() => null);
    const card = fresh && document.querySelector(`#channel-${fresh.id} .channel-status`);
    if (card) replace(card, badge(fresh.status));
  });
  cleanup(() => events.stop());
}
