// A transparent caption overlay (OBS browser source): the latest segment of any stream on this server,
// committed text plain, tentative text faded; a finished line stays for a few seconds, then clears.
"use strict";
const params = new URLSearchParams(location.search);
const token = params.get("token");
const only = params.get("session"); // show one stream only (its id is in the "ready" message)
const HOLD_MS = 4000;
let clearTimer = null;

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/v1/captions${token ? `?token=${encodeURIComponent(token)}` : ""}`);
  socket.onmessage = (message) => {
    const event = JSON.parse(message.data);
    if (only && event.session !== only) return;
    document.querySelector(".committed").textContent = event.segment_text;
    document.querySelector(".tentative").textContent = event.final ? "" : event.tentative;
    clearTimeout(clearTimer);
    if (event.final) clearTimer = setTimeout(() => { document.querySelector(".committed").textContent = ""; }, HOLD_MS);
  };
  socket.onclose = () => setTimeout(connect, 2000); // the server restarted: reconnect
}

connect();
