// hls.js (vendored, imported only by the pages that play), run without its
// worker so the CSP needs no blob: workers. Key requests carry a token that
// opens this stream's keys only.

import { previewToken } from "./api.js";

const RENEW_MS = 4 * 60_000; // inside the console's token lifetime

export async function play(video, url, assetId) {
  const { default: Hls } = await import("./vendor/hls.js/hls.min.mjs");
  let bearer = await previewToken(assetId);
  const renewing = setInterval(async () => {
    try { bearer = await previewToken(assetId); } catch { /* signed out: keys stop */ }
  }, RENEW_MS);
  if (!Hls.isSupported()) {
    clearInterval(renewing);
    throw new Error("this browser cannot play HLS here");
  }
  const hls = new Hls({
    enableWorker: false,
    xhrSetup(xhr, requestUrl) {
      if (new URL(requestUrl, location.href).pathname.startsWith("/keys/")) {
        xhr.setRequestHeader("Authorization", `Bearer ${bearer}`);
      }
    },
  });
  // Muted, so the browser lets the preview start by itself.
  video.muted = true;
  hls.on(Hls.Events.MANIFEST_PARSED, () => { video.play().catch(() => {}); });
  hls.on(Hls.Events.ERROR, (_event, data) => {
    if (data.fatal) video.dispatchEvent(new CustomEvent("previewerror", { detail: data }));
  });
  hls.loadSource(url);
  hls.attachMedia(video);
  return { stop() { clearInterval(renewing); hls.destroy(); }, hls };
}
