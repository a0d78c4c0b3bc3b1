// The key audit (admins): every key delivered or refused, newest first.

import { api } from "../api.js";
import { h, replace, when } from "../dom.js";

export const title = "Key audit";

export async function render(main) {
  const body = h("tbody");
  const more = h("p");
  replace(main, h("h1", {}, "Key audit"),
          h("div", { class: "card" }, h("table", { id: "audit" },
            h("thead", {}, h("tr", {}, ["When", "Outcome", "Asset", "Key", "Subject", "Device",
                                        "Client", "From"].map((t) => h("th", { scope: "col" }, t)))),
            body)), more);

  async function load(url) {
    const page = await api(url);
    for (const row of page.items) {
      body.append(h("tr", {}, h("td", {}, when(row.at)),
                    h("td", {}, h("span", { class: `badge ${row.outcome === "delivered"
                                                            ? "ready" : "failed"}` }, row.outcome)),
                    h("td", {}, h("a", { href: `#/assets/${row.asset}` }, row.asset.slice(0, 8))),
                    h("td", {}, row.key_id.slice(0, 8)), h("td", {}, row.subject),
                    h("td", {}, row.device || ""), h("td", {}, row.client || ""),
                    h("td", {}, row.client_address || "")));
    }
    if (!body.children.length) body.append(h("tr", {}, h("td", { colspan: 8 }, "Nothing yet.")));
    replace(more, page.next ? h("button", { type: "button", class: "secondary",
                                            onclick: () => load(page.next) }, "Show more") : null);
  }
  await load("/v1/key-audit?limit=50");
}
