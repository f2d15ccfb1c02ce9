"""Running leanspeech on Ray (``pip install 'leanspeech[ray]'``): Ray Serve replicas and Ray Data batch jobs."""
