// Parse playlists with hls-parser in strict mode: an independent reading of RFC 8216.
// Usage: node parse.js FILE...; prints one JSON line per file, exits 1 if any is refused.
"use strict";
const fs = require("fs");
const HLS = require("hls-parser");

HLS.setOptions({ strictMode: true });
let refused = 0;
for (const path of process.argv.slice(2)) {
  const result = { path };
  try {
    const playlist = HLS.parse(fs.readFileSync(path, "utf8"));
    result.master = playlist.isMasterPlaylist;
    if (playlist.isMasterPlaylist) {
      result.variants = playlist.variants.length;
      result.iframe_variants = playlist.variants.filter((v) => v.isIFrameOnly).length;
    } else {
      result.segments = playlist.segments.length;
    }
  } catch (error) {
    refused += 1;
    result.error = String(error && error.message ? error.message : error);
  }
  console.log(JSON.stringify(result));
}
process.exit(refused ? 1 : 0);
