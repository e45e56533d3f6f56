"""The public Python API: the one place that wires models, data and the engine together.

    import resattn
    summary, run_dir = resattn.train(recipe="fast", data_dir="data", time_budget=600)
    model = resattn.load_model(run_dir)              # eval mode, model.pretrained_cfg
    resattn.evaluate(model)["top1"]                   # on the test split of its dataset
    resattn.predict(model, ["cat.jpg"], topk=3)      # [[("cat", 0.91), ...]]
    resattn.explain(model, ["cat.jpg"])[0].save("cat_masks.png")  # every soft mask
    resattn.faithfulness(model, images=500).table()   # masks vs Grad-CAM vs random
    resattn.export(model, "model.onnx")               # or "torchscript", "safetensors"
    resattn.plot(run_dir)                             # run_dir/curves.png
    resattn.api.write_shards("imagenet", "shards")     # then train with dataset="shards"

The command line (`resattn ...`) only parses arguments, calls these and prints.
"""

from ..data import write_shards
from .build import build_model, load_data, load_model, load_source, model_from_checkpoint
from .curves import plot
from .explain import Explainer, Explanation, explain
from .exporting import export
from .faithfulness import Faithfulness, faithfulness
from .inference import Predictor, evaluate, int8_model, predict
from .sharing import save_pretrained
from .training import train, train_config

__all__ = ["Explainer", "Explanation", "Faithfulness", "Predictor", "build_model", "evaluate",
           "explain", "export", "faithfulness", "int8_model", "load_data", "load_model",
           "load_source", "model_from_checkpoint", "plot", "predict", "save_pretrained", "train",
           "train_config", "write_shards"]
