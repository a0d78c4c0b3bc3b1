// The console's pages, one per hash route (#/assets, #/assets/{id}, #/upload...):
// each renders into <main>, which gets the focus and the page's name, so a
// screen reader hears where it landed. data-ready on <html> marks the first
// page drawn with its data (the benchmark's time to interactive).

import { ApiError } from "./api.js";
import { h, replace } from "./dom.js";

const ROUTES = [
  [/^#\/assets\/([0-9a-f]{32})$/, () => import("./pages/asset.js")],
  [/^#\/assets$/, () => import("./pages/assets.js")],
  [/^#\/upload$/, () => import("./pages/upload.js")],
  [/^#\/channels$/, () => import("./pages/channels.js")],
  [/^#\/audit$/, () => import("./pages/audit.js")],
  [/^#\/admin$/, () => import("./pages/admin.js")],
  [/^#\/webhooks$/, () => import("./pages/webhooks.js")],
];

const main = document.getElementById("main");
let cleanups = [];
let shown = 0;

function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

async function route() {
  for (const stop of cleanups) stop();
  cleanups = [];
  const hash = location.hash || "#/assets";
  const turn = ++shown;
  for (const link of document.querySelectorAll(".bar nav a")) {
    if (link.getAttribute("href") === hash.replace(/\/[0-9a-f]{32}$/, "")) {
      link.setAttribute("aria-current", "page");
    } else link.removeAttribute("aria-current");
  }
  const found = ROUTES.find(([pattern]) => pattern.test(hash));
  if (!found) { go("#/assets"); return; }
  const params = hash.match(found[0]).slice(1);
  main.removeAttribute("data-ready");
  try {
    const page = await found[1]();
    if (turn !== shown) return; // another page was asked for meanwhile
    document.title = `${page.title} · stb-origin console`;
    main.dataset.page = page.title.toLowerCase();
    await page.render(main, { params, go, cleanup: (stop) => cleanups.push(stop) });
  } catch (error) {
    if (turn !== shown) return;
    if (error instanceof ApiError && error.status === 401) return; // api.js said so
    replace(main, h("p", { class: "error", role: "alert" },
                    `Something went wrong: ${error.message}`));
  }
  if (turn !== shown) return;
  main.dataset.ready = "1";
  main.focus({ preventScroll: true });
  if (!document.documentElement.dataset.ready) {
    document.documentElement.dataset.ready = "1";
    performance.mark("console-ready");
  }
}

addEventListener("hashchange", route);
route(); // the page's module loads while its first API call mints the token
