// Webhooks (admins): list and create subscriptions, read each one's delivery log,
// redeliver a delivery.

import { api } from "../api.js";
import { badge, field, h, replace, say, when } from "../dom.js";

export const title = "Webhooks";

// stb_origin/webhooks/event_types.py
const EVENT_TYPES = ["asset.queued", "asset.processing", "asset.ready", "asset.failed",
  "channel.starting", "channel.live", "channel.no_signal", "channel.failed",
  "title.created", "title.updated", "title.deleted", "guide.imported",
  "entitlement.granted", "entitlement.revoked"];

function attemptsText(delivery) {
  return delivery.attempts.map((a) => `#${a.number} ${a.status_code ?? a.error ?? "?"}`)
    .join(", ");
}

async function deliveries(hook, into) {
  const page = await api(`/v1/webhooks/${hook.id}/deliveries?limit=50`);
  const rows = page.items.map((d) => h("tr", {},
    h("td", {}, when(d.created_at)), h("td", {}, d.type), h("td", {}, badge(d.state)),
    h("td", {}, attemptsText(d)),
    h("td", {}, h("button", { type: "button", class: "secondary small",
                              "aria-label": `Redeliver ${d.type} of ${when(d.created_at)}`,
                              onclick: async () => {
                                await api(`/v1/webhooks/${hook.id}/deliveries/${d.id}/redeliver`,
                                          { method: "POST" });
                                say(`Redelivery of ${d.type} queued.`);
                                deliveries(hook, into);
                              } }, "Redeliver"))));
  replace(into, h("table", {},
    h("caption", { class: "muted" }, `Deliveries to ${hook.url}`),
    h("thead", {}, h("tr", {}, ["When", "Event", "State", "Attempts", ""].map(
      (t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: 5 }, "None yet.")))));
}

export async function render(main) {
  const list = h("tbody");
  const log = h("div", { class: "card", id: "deliveries" },
                h("p", { class: "muted" }, "Choose a webhook's Deliveries button."));
  const secret = h("p", { id: "new-secret", role: "status" });

  async function load() {
    const page = await api("/v1/webhooks?limit=100");
    replace(list, page.items.length ? page.items.map((hook) => h("tr", {},
      h("td", {}, hook.url), h("td", {}, hook.events.join(", ")),
      h("td", {}, hook.active ? "active" : "paused"),
      h("td", {}, h("button", { type: "button", class: "secondary small",
                                "aria-label": `Deliveries of ${hook.url}`,
                                onclick: () => deliveries(hook, log) }, "Deliveries"))))
      : h("tr", {}, h("td", { colspan: 4 }, "No webhooks yet.")));
  }

  const url = h("input", { id: "webhooks-url", type: "url", required: true,
                           placeholder: "https://" });
  const boxes = EVENT_TYPES.map((type) => h("label", { class: "check" },
    h("input", { type: "checkbox", name: "events", value: type,
                 checked: type.startsWith("asset.") }), ` ${type}`));
  const form = h("form", { class: "card" }, h("h2", {}, "New webhook"), ...field("URL", url),
                 h("fieldset", {}, h("legend", {}, "Events"), boxes),
                 h("button", { type: "submit", id: "create-webhook" }, "Create"), secret);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const events = boxes.map((b) => b.querySelector("input")).filter((i) => i.checked)
      .map((i) => i.value);
    const made = await api("/v1/webhooks", { method: "POST", json: { url: url.value, events } });
    // Shown once: the receiver needs it to check signatures.
    replace(secret, "Signing secret (shown once): ", h("code", {}, made.secret));
    say(`Webhook for ${made.url} created.`);
    load();
  });
  replace(main, h("h1", {}, "Webhooks"),
          h("div", { class: "card" }, h("table", { id: "webhooks" },
            h("thead", {}, h("tr", {}, ["URL", "Events", "State", ""].map(
              (t) => h("th", { scope: "col" }, t)))), list)),
          log, form);
  await load();
}
