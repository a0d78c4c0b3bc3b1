// GET /v1/events over a WebSocket: the token as the subprotocol bearer.<token>
// beside stb-events (a browser cannot set headers there, and a URL would log it).
// Reconnects with the last offset seen, so nothing is missed in between.

import { token } from "./api.js";

export function follow(topics, onEvent) {
  let socket = null;
  let stopped = false;
  let after = null;
  let wait = 1000;

  async function connect() {
    if (stopped) return;
    let bearer;
    try {
      bearer = await token({ background: true });
    } catch {
      setTimeout(connect, 15_000); // idle or signed out: look again later
      return;
    }
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const query = new URLSearchParams({ topics });
    if (after) query.set("after", after);
    socket = new WebSocket(`${scheme}//${location.host}/v1/events?${query}`,
                           ["stb-events", `bearer.${bearer}`]);
    socket.onopen = () => { wait = 1000; };
    socket.onmessage = (message) => {
      const data = JSON.parse(message.data);
      if (data.type === "event") {
        after = data.id;
        onEvent(data);
      } else if (data.type === "resync") {
        after = data.offset;
        onEvent({ resync: true });
      }
    };
    socket.onclose = () => {
      if (stopped) return;
      setTimeout(connect, wait);
      wait = Math.min(wait * 2, 30_000);
    };
  }

  connect();
  return { stop() { stopped = true; socket?.close(); } };
}
