"""Writes benign model files made by real scikit-learn, NumPy and joblib into a directory:
the scanner's no-false-alarm cases (every one must scan clean). scripts/with-real-models.sh
installs the packages and runs this before the tests.

    python gen-real-models.py OUT_DIR
"""

import collections
import datetime
import os
import pickle
import sys

import joblib
import numpy as np
from sklearn.decomposition import PCA
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier

out = sys.argv[1]
os.makedirs(out, exist_ok=True)

rng = np.random.RandomState(0)
X = rng.rand(40, 4)
y = (X[:, 0] > 0.5).astype(int)

models = {
    "logreg": LogisticRegression().fit(X, y),
    "linreg": LinearRegression().fit(X, X[:, 1]),
    "tree": DecisionTreeClassifier(max_depth=3, random_state=0).fit(X, y),
    "forest": RandomForestClassifier(n_estimators=3, max_depth=3, random_state=0).fit(X, y),
    "gbc": GradientBoostingClassifier(n_estimators=3, max_depth=2, random_state=0).fit(X, y),
    "svc": SVC().fit(X, y),
    "knn": KNeighborsClassifier(n_neighbors=3).fit(X, y),
    "nb": GaussianNB().fit(X, y),
    "pca": PCA(n_components=2, random_state=0).fit(X),
    "pipeline": Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression())]).fit(X, y),
    "onehot": OneHotEncoder().fit(np.array([["a"], ["b"], ["c"]], dtype=object)),
}

for name, model in models.items():
    for proto in (2, 4, 5):
        with open(os.path.join(out, f"sk_{name}_p{proto}.pkl"), "wb") as f:
            pickle.dump(model, f, protocol=proto)

# joblib dumps: arrays interleaved with the pickle stream, plain and compressed.
joblib.dump(models["forest"], os.path.join(out, "jl_forest.joblib"))
joblib.dump(models["pipeline"], os.path.join(out, "jl_pipeline.joblib"))
joblib.dump(models["onehot"], os.path.join(out, "jl_onehot.joblib"))
joblib.dump(models["logreg"], os.path.join(out, "jl_logreg_zlib.joblib"), compress=("zlib", 3))
joblib.dump(models["tree"], os.path.join(out, "jl_tree_gzip.joblib"), compress=("gzip", 3))
joblib.dump(models["knn"], os.path.join(out, "jl_knn_xz.joblib"), compress=("xz", 3))
joblib.dump(models["gbc"], os.path.join(out, "jl_gbc_lzma.joblib"), compress=("lzma", 3))
try:
    import lz4  # noqa: F401

    joblib.dump(models["svc"], os.path.join(out, "jl_svc_lz4.joblib"), compress=("lz4", 3))
except ImportError:
    pass

# Plain numpy data, including object arrays and random state.
arrays = {
    "float": np.arange(12, dtype=np.float64).reshape(3, 4),
    "int": np.arange(10, dtype=np.int32),
    "bool": np.array([True, False]),
    "str": np.array(["a", "bcd"]),
    "obj": np.array([1, "two", None, 3.0], dtype=object),
    "scalar": np.float32(1.5),
    "fortran": np.asfortranarray(np.ones((3, 2))),
    "rs": np.random.RandomState(1),
    "gen": np.random.default_rng(2),
    "structured": np.zeros(2, dtype=[("Owner", "i4"), ("w", "f8")]),
}
for proto in (2, 4, 5):
    with open(os.path.join(out, f"np_arrays_p{proto}.pkl"), "wb") as f:
        pickle.dump(arrays, f, protocol=proto)
joblib.dump(arrays, os.path.join(out, "jl_arrays.joblib"))
joblib.dump(arrays, os.path.join(out, "jl_arrays_gzip.joblib"), compress=("gzip", 1))
np.save(os.path.join(out, "np_object.npy"), arrays["obj"], allow_pickle=True)

# Plain Python data.
plain = {
    "od": collections.OrderedDict(a=1, b=[1, 2]),
    "dd": collections.defaultdict(list, x=[1]),
    "set": {1, 2},
    "fs": frozenset({3}),
    "bytes": b"\x80\x04binary",
    "ba": bytearray(b"xy"),
    "dt": datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc),
    "td": datetime.timedelta(days=1),
    "complex": 1 + 2j,
    "slice": slice(1, 2),
    "range": range(3),
}
for proto in range(6):
    with open(os.path.join(out, f"py_plain_p{proto}.pkl"), "wb") as f:
        pickle.dump(plain, f, protocol=proto)
print("gen-real-models: wrote", len(os.listdir(out)), "files to", out, file=sys.stderr)
