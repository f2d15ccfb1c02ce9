"""Speaker diarization: who spoke when (``diarizer``), on CAM++ embeddings (``campplus``)
of Kaldi filterbanks (``features``), clustered in numpy (``cluster``); ``labels`` puts the
speakers on a transcription's segments and words. Needs ``pip install 'leanspeech[diarize]'``."""
