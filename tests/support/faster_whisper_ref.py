#!/usr/bin/env python3
"""The reference the Whisper stage is checked against: faster-whisper (PyPI) with the options scenequeue decodes
with (greedy, temperature 0 only, timestamps, no text carried between windows, no VAD, the default no-speech and
log-probability thresholds). Prints one JSON object per file: its text and segments.

    faster_whisper_ref.py MODEL_DIR FILE...   (MODEL_DIR: the CTranslate2 model directory)
"""

import json
import sys

from faster_whisper import WhisperModel


def main():
    if len(sys.argv) < 3:
        sys.exit("usage: faster_whisper_ref.py MODEL_DIR FILE...")
    model = WhisperModel(sys.argv[1], device="cpu", compute_type="float32", cpu_threads=1)
    for path in sys.argv[2:]:
        segments, info = model.transcribe(
            path,
            beam_size=1,
            temperature=0.0,
            condition_on_previous_text=False,
            vad_filter=False,
            compression_ratio_threshold=2.4,
            log_prob_threshold=-1.0,
            no_speech_threshold=0.6,
        )
        segments = [{"start": s.start, "end": s.end, "text": s.text} for s in segments]
        text = "".join(s["text"] for s in segments).strip()
        print(json.dumps({"file": path, "text": text, "language": info.language, "segments": segments}))


if __name__ == "__main__":
    main()
