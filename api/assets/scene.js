// Spectrograms of the scene page, computed in the browser from the same audio the players play.
(function () {
  "use strict";
  var SIZE = 512, HOP = 256;
  function fft(re, im) {
    var n = re.length, i, j = 0, k, len, t;
    for (i = 1; i < n; i++) {
      var bit = n >> 1;
      for (; j & bit; bit >>= 1) j ^= bit;
      j ^= bit;
      if (i < j) { t = re[i]; re[i] = re[j]; re[j] = t; t = im[i]; im[i] = im[j]; im[j] = t; }
    }
    for (len = 2; len <= n; len <<= 1) {
      var ang = -2 * Math.PI / len, wr = Math.cos(ang), wi = Math.sin(ang);
      for (i = 0; i < n; i += len) {
        var cr = 1, ci = 0;
        for (k = 0; k < len / 2; k++) {
          var ar = re[i + k + len / 2] * cr - im[i + k + len / 2] * ci;
          var ai = re[i + k + len / 2] * ci + im[i + k + len / 2] * cr;
          re[i + k + len / 2] = re[i + k] - ar; im[i + k + len / 2] = im[i + k] - ai;
          re[i + k] += ar; im[i + k] += ai;
          t = cr * wr - ci * wi; ci = cr * wi + ci * wr; cr = t;
        }
      }
    }
  }
  function draw(canvas, samples) {
    var ctx = canvas.getContext("2d"), w = canvas.width, h = canvas.height;
    var frames = Math.max(1, Math.floor((samples.length - SIZE) / HOP));
    var image = ctx.createImageData(w, h), re = new Float32Array(SIZE), im = new Float32Array(SIZE);
    for (var x = 0; x < w; x++) {
      var start = Math.floor(x / w * frames) * HOP;
      for (var i = 0; i < SIZE; i++) {
        var win = 0.5 - 0.5 * Math.cos(2 * Math.PI * i / SIZE);
        re[i] = (samples[start + i] || 0) * win; im[i] = 0;
      }
      fft(re, im);
      for (var y = 0; y < h; y++) {
        var bin = Math.floor((1 - y / h) * (SIZE / 2 - 1));
        var db = 10 * Math.log10(re[bin] * re[bin] + im[bin] * im[bin] + 1e-12);
        var v = Math.max(0, Math.min(255, Math.round((db + 100) * 2.55)));
        var p = (y * w + x) * 4;
        image.data[p] = v; image.data[p + 1] = Math.round(v * 0.6); image.data[p + 2] = 255 - v; image.data[p + 3] = 255;
      }
    }
    ctx.putImageData(image, 0, 0);
    canvas.dataset.drawn = "true";
  }
  var Context = window.OfflineAudioContext || window.webkitOfflineAudioContext;
  document.querySelectorAll("canvas.spectrogram").forEach(function (canvas) {
    fetch(canvas.dataset.src)
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.arrayBuffer(); })
      .then(function (buf) { return new Context(1, 1, 48000).decodeAudioData(buf); })
      .then(function (audio) { draw(canvas, audio.getChannelData(0)); })
      .catch(function () { canvas.dataset.drawn = "failed"; });
  });
})();
