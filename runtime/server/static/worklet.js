// AudioWorklet: microphone blocks -> mono 16 kHz int16, posted to the page about every 100 ms.
// Resampling is linear interpolation with the fractional read position carried across blocks, so block
// borders make no clicks; the server resamples nothing when it gets 16 kHz.
const TARGET_RATE = 16000;
const POST_SAMPLES = 1600;

class SimulsaCapture extends AudioWorkletProcessor {
  constructor() {
    super();
    this.step = sampleRate / TARGET_RATE; // input samples per output sample
    this.position = 0; // read position into `this.tail + block`, in input samples
    this.tail = new Float32Array(0); // input not yet consumed (at most one sample)
    this.out = new Int16Array(POST_SAMPLES);
    this.filled = 0;
  }

  process(inputs) {
    const channels = inputs[0];
    if (!channels || channels.length === 0) return true;
    const n = channels[0].length;
    const input = new Float32Array(this.tail.length + n);
    input.set(this.tail);
    for (let i = 0; i < n; i++) { // downmix: the mean of the channels
      let sum = 0;
      for (const channel of channels) sum += channel[i];
      input[this.tail.length + i] = sum / channels.length;
    }
    while (this.position + 1 < input.length) {
      const i = Math.floor(this.position);
      const frac = this.position - i;
      const value = input[i] * (1 - frac) + input[i + 1] * frac;
      this.out[this.filled++] = Math.max(-32768, Math.min(32767, Math.round(value * 32768)));
      if (this.filled === POST_SAMPLES) {
        this.port.postMessage(this.out.buffer, [this.out.buffer]);
        this.out = new Int16Array(POST_SAMPLES);
        this.filled = 0;
      }
      this.position += this.step;
    }
    const keep = Math.floor(this.position);
    this.tail = input.slice(keep);
    this.position -= keep;
    return true;
  }
}

registerProcessor("simulsa-capture", SimulsaCapture);
