// AudioWorkletProcessor: the microphone (first channel) resampled to 16 kHz float32, posted
// to the page in chunks of about 100 ms. Linear interpolation, with the fractional read
// position carried from block to block so that chunks join without a click.

const TARGET = 16000;
const CHUNK = 1600;

class Capture extends AudioWorkletProcessor {
  constructor() {
    super();
    this.step = sampleRate / TARGET; // input samples per output sample
    this.position = 0; // read position in `this.tail` + the current block
    this.tail = new Float32Array(0); // input samples not yet fully used
    this.out = new Float32Array(CHUNK);
    this.filled = 0;
    this.port.onmessage = (e) => { if (e.data === "flush") this.flush(); };
  }

  flush() {
    if (this.filled > 0) {
      this.port.postMessage(this.out.slice(0, this.filled));
      this.filled = 0;
    }
    this.port.postMessage("flushed");
  }

  process(inputs) {
    const input = inputs[0] && inputs[0][0];
    if (!input) return true;
    const data = new Float32Array(this.tail.length + input.length);
    data.set(this.tail);
    data.set(input, this.tail.length);
    let pos = this.position;
    while (pos + 1 < data.length) {
      const i = Math.floor(pos);
      const frac = pos - i;
      this.out[this.filled++] = data[i] * (1 - frac) + data[i + 1] * frac;
      if (this.filled === CHUNK) {
        this.port.postMessage(this.out.slice());
        this.filled = 0;
      }
      pos += this.step;
    }
    const keep = Math.floor(pos);
    this.tail = data.slice(keep);
    this.position = pos - keep;
    return true;
  }
}

registerProcessor("leanspeech-capture", Capture);
