// Upload: drag and drop or the file picker, sent with tus-js-client (resumable: a
// reload, then the same file picked again, carries on where it stopped), with a
// progress bar; then the page follows the new asset.

import { token } from "../api.js";
import { field, h, replace, say } from "../dom.js";

export const title = "Upload";

// Small enough to resume cheaply on a poor link; tests and slow links may pick less.
const CHUNK_BYTES = Number(sessionStorage.getItem("stb-console:chunk-bytes")) || 8 * 2 ** 20;
const ASSET_HEADER = "Stb-Asset"; // the asset a finished tus upload became

// tus-js-client's UMD build is a classic script (it defines window.tus): added
// when this page is first shown, so other pages do not load it.
function loadTus() {
  if (window.tus) return Promise.resolve(window.tus);
  return new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = new URL("../vendor/tus-js-client/tus.min.js", import.meta.url).href;
    script.onload = () => resolve(window.tus);
    script.onerror = () => reject(new Error("tus-js-client did not load"));
    document.head.append(script);
  });
}

async function assetOf(upload, lastResponse) {
  const said = lastResponse?.getHeader(ASSET_HEADER);
  if (said) return said;
  const head = await fetch(upload.url, { method: "HEAD", headers: {
    "Tus-Resumable": "1.0.0", Authorization: `Bearer ${await token()}` } });
  return head.headers.get(ASSET_HEADER);
}

export async function render(main, { go, cleanup }) {
  const picker = h("input", { id: "file", type: "file", accept: "video/*,.mxf,.mkv,.mov" });
  const titleInput = h("input", { id: "title", type: "text", maxlength: 200,
                                   autocomplete: "off" });
  const progress = h("progress", { id: "upload-progress", max: 100, value: 0,
                                   "aria-valuemin": 0, "aria-valuemax": 100,
                                   "aria-valuenow": 0, "aria-labelledby": "progress-label" });
  const progressText = h("span", { id: "progress-text", "aria-live": "polite" }, "");
  const note = h("p", { class: "muted", id: "resume-note" });
  const drop = h("label", { class: "drop", for: "file" },
                 h("strong", {}, "Drop a master here"), h("br"),
                 h("span", { class: "muted" }, "or choose one with the button below"));
  const start = h("button", { id: "start-upload", type: "submit", disabled: true }, "Upload");
  const stop = h("button", { id: "pause-upload", type: "button", class: "secondary",
                             disabled: true }, "Pause");
  let file = null;
  let upload = null;

  function choose(chosen) {
    file = chosen;
    start.disabled = !file;
    if (file && !titleInput.value) titleInput.value = file.name.replace(/\.[^.]+$/, "");
    say(file ? `Chosen: ${file.name}` : "");
  }
  picker.addEventListener("change", () => choose(picker.files[0] || null));
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    choose(e.dataTransfer.files[0] || null);
  });

  function show(percent) {
    progress.value = percent;
    progress.setAttribute("aria-valuenow", String(percent));
    progressText.textContent = `${percent}%`;
  }

  const form = h("form", { class: "card", id: "upload-form" },
                 drop, picker, ...field("Title", titleInput),
                 h("p", { id: "progress-label" }, "Upload progress"), progress, progressText,
                 note, h("div", { class: "row" }, start, stop));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!file) return;
    start.disabled = true;
    stop.disabled = false;
    const tus = await loadTus();
    upload = new tus.Upload(file, {
      endpoint: "/v1/uploads",
      chunkSize: CHUNK_BYTES,
      retryDelays: [0, 1000, 3000, 5000, 10000],
      metadata: { filename: file.name, filetype: file.type, title: titleInput.value },
      // tus-js-client keeps each upload's URL (by the file's fingerprint) in
      // localStorage, which is what lets a reloaded page resume it.
      storeFingerprintForResuming: true,
      removeFingerprintOnSuccess: true,
      onBeforeRequest: async (request) => {
        request.setHeader("Authorization", `Bearer ${await token()}`);
      },
      onProgress: (sent, total) => show(Math.floor((sent / total) * 100)),
      onError: (error) => {
        start.disabled = false;
        stop.disabled = true;
        say(`The upload stopped: ${error.message}. Press Upload to carry on.`);
      },
      onSuccess: async ({ lastResponse }) => {
        show(100);
        stop.disabled = true;
        const assetId = await assetOf(upload, lastResponse);
        say(`Uploaded ${file.name}. Processing starts now.`);
        if (assetId) go(`#/assets/${assetId}`);
      },
    });
    const previous = await upload.findPreviousUploads();
    if (previous.length) {
      upload.resumeFromPreviousUpload(previous[0]);
      note.textContent = "Resuming the earlier upload of this file.";
    }
    upload.start();
    say(`Uploading ${file.name}…`);
  });
  stop.addEventListener("click", () => {
    upload?.abort();
    start.disabled = false;
    stop.disabled = true;
    say("Paused. Press Upload to carry on.");
  });
  cleanup(() => upload?.abort());

  await loadTus();
  replace(main, h("h1", {}, "Upload a master"),
          h("p", { class: "muted" }, "Uploads resume after a dropped connection or a reload:"
            + " pick the same file again to carry on."), form);
}
