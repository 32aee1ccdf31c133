"""Writes the scanner benchmark's inputs into a directory (needs numpy and scikit-learn, as in
scripts/with-real-models.sh's environment):

  bytes.pkl      one bytes object of 200 MB (protocol 4)
  float32.pkl    a float32 NumPy array of 200 MB (protocol 4)
  dict.pkl       a dict of 5,200,000 small entries, about 104 MB (protocol 4)
  torch.pt       a PyTorch-style zip checkpoint of 200 MB: archive/data.pkl naming its tensors'
                 storages through persistent ids, archive/data/0 the float32 bytes, stored,
                 exactly the layout torch.save writes (written without torch, whose wheel is
                 ~800 MB, by pickling through stand-ins for torch's own globals)
  small/         1,000 small models: scikit-learn estimators pickled with protocol 4

    python bench-scan-inputs.py OUT_DIR
"""

import os
import pickle
import sys
import types
import zipfile

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier

out = sys.argv[1]
os.makedirs(os.path.join(out, "small"), exist_ok=True)
MB = 1_000_000

with open(os.path.join(out, "bytes.pkl"), "wb") as f:
    pickle.dump(np.random.default_rng(0).bytes(200 * MB), f, protocol=4)

with open(os.path.join(out, "float32.pkl"), "wb") as f:
    pickle.dump(np.random.default_rng(1).random(50 * MB, dtype=np.float32), f, protocol=4)

with open(os.path.join(out, "dict.pkl"), "wb") as f:
    pickle.dump({f"k{i:07d}": float(i) for i in range(5_200_000)}, f, protocol=4)


# Stand-ins with torch's module and qualified names, so the pickle names exactly the globals a
# real checkpoint names (torch._utils._rebuild_tensor_v2, torch.FloatStorage, OrderedDict).
def _stand_in(module, name, obj):
    mod = sys.modules.setdefault(module, types.ModuleType(module))
    obj.__module__, obj.__qualname__, obj.__name__ = module, name, name
    setattr(mod, name, obj)
    return obj


torch = sys.modules.setdefault("torch", types.ModuleType("torch"))
FloatStorage = _stand_in("torch", "FloatStorage", type("FloatStorage", (), {}))
_utils = _stand_in("torch._utils", "_rebuild_tensor_v2", lambda *a: None)
torch._utils = sys.modules["torch._utils"]


class Storage:
    def __init__(self, key, numel):
        self.key, self.numel = key, numel


class Tensor:
    def __init__(self, storage, shape):
        self.storage, self.shape = storage, shape

    def __reduce__(self):
        import collections

        stride = tuple(int(np.prod(self.shape[i + 1 :])) for i in range(len(self.shape)))
        return (_utils, (self.storage, 0, self.shape, stride, False, collections.OrderedDict()))


class CheckpointPickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            return ("storage", FloatStorage, obj.key, "cpu", obj.numel)
        return None


import collections  # noqa: E402
import io  # noqa: E402

weights = np.random.default_rng(2).random(50 * MB, dtype=np.float32)
state = collections.OrderedDict([("encoder.weight", Tensor(Storage("0", weights.size), (5000, 10000)))])
buf = io.BytesIO()
CheckpointPickler(buf, protocol=2).dump(state)
with zipfile.ZipFile(os.path.join(out, "torch.pt"), "w", zipfile.ZIP_STORED) as z:
    z.writestr("archive/data.pkl", buf.getvalue())
    z.writestr("archive/byteorder", "little")
    z.writestr("archive/data/0", weights.tobytes())
    z.writestr("archive/version", "3\n")

rng = np.random.RandomState(0)
X = rng.rand(30, 4)
y = (X[:, 0] > 0.5).astype(int)
for i in range(1000):
    model = LogisticRegression(C=1.0 + i / 1000).fit(X, y) if i % 2 else DecisionTreeClassifier(max_depth=2 + i % 3).fit(X, y)
    with open(os.path.join(out, "small", f"model-{i:04d}.pkl"), "wb") as f:
        pickle.dump(model, f, protocol=4)
print("bench-scan-inputs: wrote", out, file=sys.stderr)
