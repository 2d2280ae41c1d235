#!/usr/bin/env bash
# Regenerates fixtures/voice/: the callee audio the simulator plays and the voice tests hear.
# Raw G.711 mu-law, 8,000 Hz, mono, no header (`.ulaw`), as a phone line carries it.
# Needs Debian's flite and sox (apt-get install flite sox). The clips are committed; this
# script only documents and repeats how they were made.
set -euo pipefail
out="$(cd "$(dirname "$0")/.." && pwd)/fixtures/voice"
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
mkdir -p "$out"

say() { # name voice text
  flite -voice "$2" -t "$3" -o "$tmp/$1.wav"
  sox "$tmp/$1.wav" -r 8000 -c 1 -e mu-law -t raw "$out/$1.ulaw"
}
say hello slt "Hello?"
say yes_speaking rms "Yes, this is Sam speaking."
say question slt "What time is my appointment tomorrow?"
say thanks_bye rms "Okay, thank you. Goodbye."
say interrupt slt "Sorry, wait, can I stop you there? I have a question."
say mhm rms "Mm."

# A voicemail greeting (well over 8 s of speech), half a second of silence, then a 1,000 Hz beep (500 ms).
flite -voice slt -t "Hi, you have reached the voicemail of Alex Morgan. I am not able to take your call right now. Please leave your name, your number and a short message after the tone, and I will call you back as soon as I can. Thank you." -o "$tmp/vm.wav"
sox "$tmp/vm.wav" -r 8000 -c 1 "$tmp/vm8.wav"
sox -n -r 8000 -c 1 "$tmp/gap.wav" trim 0 0.5
sox -n -r 8000 -c 1 -b 16 "$tmp/beep.wav" synth 0.5 sine 1000 vol 0.5
sox "$tmp/vm8.wav" "$tmp/gap.wav" "$tmp/beep.wav" -e mu-law -t raw "$out/voicemail_beep.ulaw"
# A voicemail greeting that ends in silence, no beep.
sox "$tmp/vm8.wav" -e mu-law -t raw "$out/voicemail_no_beep.ulaw"

# Not speech and not a beep: a DTMF "5" (770 + 1336 Hz, 200 ms) and a 150 ms cough-like noise burst.
sox -n -r 8000 -c 1 -b 16 "$tmp/dtmf.wav" synth 0.2 sine 770 sine 1336 remix 1,2 vol 0.4 2>/dev/null || \
  sox -n -r 8000 -c 1 -b 16 "$tmp/dtmf.wav" synth 0.2 sine 770 synth 0.2 sine mix 1336 vol 0.4
sox "$tmp/dtmf.wav" -e mu-law -t raw "$out/dtmf_5.ulaw"
sox -n -r 8000 -c 1 -b 16 "$tmp/cough.wav" synth 0.15 pinknoise vol 0.5
sox "$tmp/cough.wav" -e mu-law -t raw "$out/cough.ulaw"
