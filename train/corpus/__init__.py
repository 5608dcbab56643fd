"""`simulsa corpus`: an offline speech-translation corpus from WordNet sentences, apertium and TTS programs."""
