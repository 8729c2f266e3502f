"""Transcribes WAV files with PocketSphinx 5 and its bundled US English acoustic model and dictionary (run by
`scenequeue-bench transcription`; scripts/fetch-recogniser.sh installs it).

Usage: transcribe.py LIST [LM], where LIST names one 16 kHz mono 16-bit WAV file per line and LM is an ARPA
language model (the bundled general English one without it). Prints one JSON object per file, in order:
{"path": ..., "text": ...}, the recognised words in lower case without fillers or silences.
"""
import json
import sys
import wave

from pocketsphinx import Decoder


def main() -> None:
    options = {"lm": sys.argv[2]} if len(sys.argv) > 2 else {}
    decoder = Decoder(samprate=16000, loglevel="FATAL", **options)
    with open(sys.argv[1], encoding="utf-8") as listing:
        paths = [line.strip() for line in listing if line.strip()]
    for path in paths:
        with wave.open(path, "rb") as w:
            if w.getframerate() != 16000 or w.getnchannels() != 1 or w.getsampwidth() != 2:
                sys.exit(f"{path}: expected 16 kHz mono 16-bit WAV")
            pcm = w.readframes(w.getnframes())
        decoder.start_utt()
        decoder.process_raw(pcm, full_utt=True)
        decoder.end_utt()
        words = [s.word for s in decoder.seg() if not s.word.startswith(("<", "[")) and s.word != "</s>"]
        # Alternative pronunciations come as "word(2)".
        words = [w.split("(")[0] for w in words]
        print(json.dumps({"path": path, "text": " ".join(words)}), flush=True)


if __name__ == "__main__":
    main()
