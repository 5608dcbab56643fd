// The browser client of /v1/stream (docs/protocol.md): microphone -> worklet (16 kHz int16) -> WebSocket;
// committed text plain, tentative text dimmed, one line per segment; SRT/VTT from the server's "end" message.
"use strict";
const $ = (id) => document.getElementById(id);
const token = new URLSearchParams(location.search).get("token");
let socket = null, audio = null, stream = null, lines = new Map();

function status(text, isError = false) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "";
}

function line(segment) {
  if (!lines.has(segment)) {
    const p = document.createElement("p");
    p.innerHTML = '<span class="committed"></span> <span class="tentative"></span>';
    $("transcript").appendChild(p);
    lines.set(segment, p);
  }
  return lines.get(segment);
}

function show(event) {
  const p = line(event.segment);
  p.querySelector(".committed").textContent = event.segment_text;
  p.querySelector(".tentative").textContent = event.final ? "" : event.tentative;
  status(`listening — ${(event.t_audio_ms / 1000).toFixed(1)} s heard, lag ${Math.round(event.lag_ms)} ms`);
}

function offerDownload(id, text) {
  const link = $(id);
  link.href = URL.createObjectURL(new Blob([text], { type: "text/plain" }));
  link.setAttribute("aria-disabled", "false");
}

async function start() {
  $("start").disabled = true;
  lines = new Map();
  $("transcript").textContent = "";
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: { channelCount: 1, echoCancellation: true } });
  } catch (error) {
    status(`no microphone: ${error.message}`, true);
    $("start").disabled = false;
    return;
  }
  audio = new AudioContext();
  await audio.audioWorklet.addModule("/worklet.js");
  const capture = new AudioWorkletNode(audio, "simulsa-capture");
  audio.createMediaStreamSource(stream).connect(capture);
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  socket = new WebSocket(`${scheme}://${location.host}/v1/stream${token ? `?token=${encodeURIComponent(token)}` : ""}`);
  socket.binaryType = "arraybuffer";
  socket.onopen = () => socket.send(JSON.stringify({
    type: "start", sample_rate: 16000, sample_format: "pcm_s16le", channels: 1,
    options: { chunk_ms: Number($("chunk_ms").value), hold: Number($("hold").value), policy: $("policy").value },
  }));
  socket.onmessage = (message) => {
    const event = JSON.parse(message.data);
    if (event.type === "ready") {
      status("listening — speak now");
      $("stop").disabled = false;
      capture.port.onmessage = (block) => { if (socket.readyState === WebSocket.OPEN) socket.send(block.data); };
    } else if (event.type === "partial" || event.type === "final") {
      show(event);
    } else if (event.type === "end") {
      offerDownload("srt", event.srt);
      offerDownload("vtt", event.vtt);
      status(`done — ${(event.audio_ms / 1000).toFixed(1)} s translated`);
    } else if (event.type === "error") {
      status(event.message, true);
    }
  };
  socket.onclose = (close) => {
    if (close.code !== 1000 && $("status").className !== "error") status(`connection closed (${close.code})`, true);
    release();
  };
}

function release() {
  if (stream) stream.getTracks().forEach((track) => track.stop());
  if (audio) audio.close();
  stream = audio = null;
  $("start").disabled = false;
  $("stop").disabled = true;
}

function stop() {
  $("stop").disabled = true;
  if (stream) stream.getTracks().forEach((track) => track.stop());
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: "end" }));
  status("finishing…");
}

$("start").onclick = start;
$("stop").onclick = stop;
