// The REST API with a short-lived token from POST /console/token, held in this
// module's memory only. It is renewed before it expires while someone is using
// the page; a page left alone lets it lapse, so the session's idle time-out holds.

const csrf = document.querySelector('meta[name="csrf-token"]').content;
const RENEW_BEFORE_MS = 60_000;
let current = null; // {token, expiresAt, mintedAt}
let pending = null;
let lastActivity = Date.now();

for (const kind of ["keydown", "pointerdown", "wheel"]) {
  addEventListener(kind, () => { lastActivity = Date.now(); }, { passive: true, capture: true });
}

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message || `request failed (${status})`);
    this.status = status;
    this.code = code;
  }
}

async function errorOf(response) {
  let body = null;
  try { body = await response.json(); } catch { /* not JSON */ }
  return new ApiError(response.status, body?.error?.code, body?.error?.message);
}

export function signedOut() {
  const main = document.getElementById("main");
  main.replaceChildren();
  const p = document.createElement("p");
  p.className = "error";
  p.setAttribute("role", "alert");
  p.append("Your session has ended. ");
  const a = document.createElement("a");
  a.href = "/console";
  a.textContent = "Sign in again";
  p.append(a);
  main.append(p);
}

async function mint(body) {
  const headers = { "X-CSRF-Token": csrf };
  if (body) headers["Content-Type"] = "application/json";
  const response = await fetch("/console/token", {
    method: "POST", headers, body: body ? JSON.stringify(body) : undefined,
    credentials: "same-origin", cache: "no-store",
  });
  if (response.status === 401) {
    signedOut();
    throw new ApiError(401, "signed_out", "signed out");
  }
  if (!response.ok) throw await errorOf(response);
  return response.json();
}

async function renew() {
  pending ??= mint().then((minted) => {
    current = { token: minted.access_token, user: minted.user,
                expiresAt: Date.now() + minted.expires_in * 1000, mintedAt: Date.now() };
    return current;
  }).finally(() => { pending = null; });
  return pending;
}

// The page's token. background: asked by no user action (the event stream
// reconnecting), so renewed only if someone used the page since the last one.
export async function token({ background = false } = {}) {
  const fresh = current && Date.now() < current.expiresAt - RENEW_BEFORE_MS;
  if (fresh) return current.token;
  if (background && current && lastActivity < current.mintedAt) {
    throw new ApiError(401, "idle", "paused while nobody uses the page");
  }
  return (await renew()).token;
}

// A token that fetches the keys of this one asset only (drm: an editor's preview).
export async function previewToken(assetId) {
  return (await mint({ asset: assetId })).access_token;
}

export async function api(path, { method = "GET", json, body, headers = {} } = {}) {
  const sent = { ...headers, Authorization: `Bearer ${await token()}` };
  if (json !== undefined) {
    sent["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  }
  const response = await fetch(path, { method, headers: sent, body, cache: "no-store" });
  if (!response.ok) throw await errorOf(response);
  if (response.status === 204) return null;
  return response.json();
}

// Keep the token fresh while the page is in use (a page in a background tab too).
setInterval(() => {
  if (current && lastActivity > current.mintedAt
      && Date.now() > current.expiresAt - 2 * RENEW_BEFORE_MS) renew().catch(() => {});
}, 20_000);
