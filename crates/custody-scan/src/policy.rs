//! Which globals a pickle may import.
//!
//! Three outcomes: **allowed** (exact dotted paths that ML checkpoints legitimately import),
//! **denied** (dotted prefixes of modules and callables that execute code, touch files, the
//! network or processes, or load further pickles), and **unknown** (everything else, reported as
//! suspicious). The deny-list is matched on dotted-path *components*: `os` covers `os.system`,
//! `os.path.join` and a STACK_GLOBAL of module `os` with name `path.join`; `builtins.getattr`
//! covers module `builtins` (or the Python 2 name `__builtin__`) with name `getattr`.
//!
//! Design rule: the allow-list is exact. A dotted name that walks *through* an allowed global
//! (`collections.OrderedDict.__reduce__`, `torch._utils._rebuild_tensor.__globals__`) is not
//! allowed by the global it starts from; it is reported as attribute traversal.

use crate::report::Severity;

/// What the policy says about one import.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Known safe.
    Allowed,
    /// Known dangerous.
    Denied {
        /// How dangerous.
        severity: Severity,
        /// Short reason, e.g. `executes shell commands`.
        reason: &'static str,
    },
    /// Neither allowed nor known-dangerous.
    Unknown,
}

/// Python 2 module names that CPython's unpickler maps to Python 3 ones (`_compat_pickle`, used
/// with `fix_imports` for protocols < 3). We apply the mapping whatever the protocol, which can
/// only make the policy stricter.
fn normalize_module(module: &str) -> &str {
    match module {
        "__builtin__" | "exceptions" => "builtins",
        "copy_reg" => "copyreg",
        "cPickle" => "pickle",
        "httplib" => "http.client",
        "urllib2" => "urllib.request",
        "commands" => "subprocess",
        "Queue" => "queue",
        "SocketServer" => "socketserver",
        "cStringIO" | "StringIO" => "io",
        "thread" => "_thread",
        "UserDict" | "UserList" | "UserString" => "collections",
        _ => module,
    }
}

/// Exact dotted paths known to be imported by legitimate PyTorch, NumPy, scikit-learn, joblib
/// and plain-Python pickles.
const ALLOW: &[&str] = &[
    // Python builtins that only construct plain data.
    "builtins.set",
    "builtins.frozenset",
    "builtins.slice",
    "builtins.complex",
    "builtins.bytearray",
    "builtins.bytes",
    "builtins.range",
    "builtins.xrange",
    "builtins.dict",
    "builtins.list",
    "builtins.tuple",
    "builtins.int",
    "builtins.float",
    "builtins.bool",
    "builtins.str",
    "builtins.unicode",
    "builtins.long",
    "builtins.object",
    "builtins.Ellipsis",
    "builtins.NotImplemented",
    "builtins.reversed",
    // Protocol 0-2 helpers that pickle itself emits.
    "copyreg._reconstructor",
    "copyreg.__newobj__",
    "copyreg.__newobj_ex__",
    "_codecs.encode",
    "codecs.encode",
    // Standard data types.
    "collections.OrderedDict",
    "collections.defaultdict",
    "collections.deque",
    "collections.Counter",
    "datetime.datetime",
    "datetime.date",
    "datetime.time",
    "datetime.timedelta",
    "datetime.timezone",
    "decimal.Decimal",
    "fractions.Fraction",
    "uuid.UUID",
    "re._compile",
    "enum.Enum",
    // PyTorch.
    "torch._utils._rebuild_tensor",
    "torch._utils._rebuild_tensor_v2",
    "torch._utils._rebuild_tensor_v3",
    "torch._utils._rebuild_parameter",
    "torch._utils._rebuild_parameter_with_state",
    "torch._utils._rebuild_qtensor",
    "torch._utils._rebuild_sparse_tensor",
    "torch._utils._rebuild_nested_tensor",
    "torch._utils._rebuild_device_tensor_from_numpy",
    "torch._utils._rebuild_meta_tensor_no_storage",
    "torch._utils._rebuild_wrapper_subclass",
    "torch._utils._rebuild_xla_tensor",
    "torch._utils._rebuild_mps_tensor",
    "torch._tensor._rebuild_from_type",
    "torch._tensor._rebuild_from_type_v2",
    "torch.Tensor",
    "torch.Size",
    "torch.device",
    "torch.dtype",
    "torch.nn.parameter.Parameter",
    "torch.nn.parameter.Buffer",
    "torch.storage.UntypedStorage",
    "torch.storage.TypedStorage",
    "torch.UntypedStorage",
    "torch.TypedStorage",
    "torch.FloatStorage",
    "torch.DoubleStorage",
    "torch.HalfStorage",
    "torch.BFloat16Storage",
    "torch.LongStorage",
    "torch.IntStorage",
    "torch.ShortStorage",
    "torch.CharStorage",
    "torch.ByteStorage",
    "torch.BoolStorage",
    "torch.ComplexFloatStorage",
    "torch.ComplexDoubleStorage",
    "torch.QUInt8Storage",
    "torch.QInt8Storage",
    "torch.QInt32Storage",
    "torch.QUInt4x2Storage",
    "torch.QUInt2x4Storage",
    "torch.float16",
    "torch.float32",
    "torch.float64",
    "torch.bfloat16",
    "torch.half",
    "torch.float",
    "torch.double",
    "torch.int8",
    "torch.int16",
    "torch.int32",
    "torch.int64",
    "torch.uint8",
    "torch.bool",
    "torch.complex64",
    "torch.complex128",
    "torch.strided",
    "torch.sparse_coo",
    "torch.contiguous_format",
    "torch.channels_last",
    "torch.preserve_format",
    "torch.per_tensor_affine",
    "torch.per_channel_affine",
    "torch.serialization._get_layout",
    // NumPy.
    "numpy.core.multiarray._reconstruct",
    "numpy._core.multiarray._reconstruct",
    "numpy.core.multiarray.scalar",
    "numpy._core.multiarray.scalar",
    "numpy.core.numeric._frombuffer",
    "numpy._core.numeric._frombuffer",
    "numpy.ndarray",
    "numpy.dtype",
    "numpy.matrix",
    "numpy.ma.core._mareconstruct",
    "numpy.ma.core.MaskedArray",
    "numpy.random._pickle.__randomstate_ctor",
    "numpy.random._pickle.__bit_generator_ctor",
    "numpy.random._pickle.__generator_ctor",
    "numpy.random.mtrand.RandomState",
    "numpy.random._generator.Generator",
    "numpy.random._mt19937.MT19937",
    "numpy.random._pcg64.PCG64",
    "numpy.random._pcg64.PCG64DXSM",
    "numpy.random._philox.Philox",
    "numpy.random._sfc64.SFC64",
    "numpy.random.bit_generator.SeedSequence",
    "numpy.random._bit_generator.SeedSequence",
    // scikit-learn's Cython `newObj(cls)` helpers only allocate (`cls.__new__(cls)`).
    "sklearn.neighbors._kd_tree.newObj",
    "sklearn.neighbors._ball_tree.newObj",
    "sklearn.metrics._dist_metrics.newObj",
    // joblib.
    "joblib.numpy_pickle.NumpyArrayWrapper",
    "joblib.numpy_pickle_compat.NDArrayWrapper",
    "joblib.numpy_pickle_compat.ZNDArrayWrapper",
    "sklearn.externals.joblib.numpy_pickle.NumpyArrayWrapper",
    // SciPy sparse matrices (legacy module paths too).
    "scipy.sparse._csr.csr_matrix",
    "scipy.sparse._csc.csc_matrix",
    "scipy.sparse._coo.coo_matrix",
    "scipy.sparse._bsr.bsr_matrix",
    "scipy.sparse._dia.dia_matrix",
    "scipy.sparse._dok.dok_matrix",
    "scipy.sparse._lil.lil_matrix",
    "scipy.sparse._csr.csr_array",
    "scipy.sparse._csc.csc_array",
    "scipy.sparse._coo.coo_array",
    "scipy.sparse.csr.csr_matrix",
    "scipy.sparse.csc.csc_matrix",
    "scipy.sparse.coo.coo_matrix",
];

/// NumPy scalar and dtype classes, pickled as `numpy.<name>` (e.g. `dtype=np.float64` stored on
/// scikit-learn estimators).
const NUMPY_SCALARS: &[&str] = &[
    "bool_",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "intc",
    "uintc",
    "intp",
    "uintp",
    "longlong",
    "ulonglong",
    "float16",
    "float32",
    "float64",
    "float128",
    "half",
    "single",
    "double",
    "longdouble",
    "complex64",
    "complex128",
    "complex256",
    "csingle",
    "cdouble",
    "clongdouble",
    "str_",
    "bytes_",
    "object_",
    "datetime64",
    "timedelta64",
    "void",
    "generic",
    "number",
    "integer",
    "floating",
    "bool",
];

/// `(dotted prefix, severity, reason)`. Matched on whole components.
const DENY: &[(&str, Severity, &str)] = {
    use Severity::{Critical as C, High as H};
    &[
        // Code execution.
        ("builtins.eval", C, "evaluates code"),
        ("builtins.exec", C, "executes code"),
        ("builtins.execfile", C, "executes a file"),
        ("builtins.compile", C, "compiles code"),
        ("builtins.__import__", C, "imports arbitrary modules"),
        ("builtins.getattr", C, "reaches arbitrary attributes"),
        ("builtins.setattr", C, "rewrites attributes"),
        ("builtins.delattr", C, "deletes attributes"),
        ("builtins.globals", C, "exposes interpreter globals"),
        ("builtins.locals", C, "exposes interpreter locals"),
        ("builtins.vars", C, "exposes object namespaces"),
        ("builtins.breakpoint", C, "starts a debugger"),
        ("builtins.input", H, "reads standard input"),
        ("builtins.open", C, "opens files"),
        ("builtins.file", C, "opens files"),
        ("builtins.apply", C, "calls arbitrary callables"),
        ("builtins.reload", C, "reloads modules"),
        ("builtins.help", H, "starts the interactive help (pager)"),
        ("builtins.exit", H, "exits the interpreter"),
        ("builtins.quit", H, "exits the interpreter"),
        ("builtins.memoryview", H, "exposes raw memory"),
        ("builtins.__build_class__", C, "builds classes from code"),
        ("code", C, "interactive interpreter: executes code"),
        ("codeop", C, "compiles code"),
        ("runpy", C, "runs modules and code"),
        ("importlib", C, "imports arbitrary modules"),
        ("imp", C, "imports arbitrary modules"),
        ("zipimport", C, "imports code from archives"),
        ("pkgutil", C, "resolves arbitrary names / imports"),
        ("marshal", C, "loads code objects"),
        ("types.CodeType", C, "builds code objects"),
        ("types.FunctionType", C, "builds functions from code"),
        ("types.LambdaType", C, "builds functions from code"),
        ("types.MethodType", C, "binds arbitrary callables"),
        ("types.ModuleType", H, "builds modules"),
        ("ctypes", C, "calls native code"),
        ("_ctypes", C, "calls native code"),
        ("cffi", C, "calls native code"),
        ("timeit", C, "executes code"),
        ("cProfile", C, "executes code under the profiler"),
        ("profile", C, "executes code under the profiler"),
        ("trace", C, "executes code under the tracer"),
        ("bdb", C, "debugger: executes code"),
        ("pdb", C, "debugger: executes code"),
        ("doctest", C, "executes docstring code"),
        ("idlelib", C, "IDLE: executes code"),
        ("lib2to3", C, "evaluates grammar/code strings"),
        ("compileall", H, "compiles files"),
        ("py_compile", H, "compiles files"),
        ("inspect", H, "introspects and reaches arbitrary objects"),
        ("gc", H, "reaches arbitrary live objects"),
        ("site", H, "modifies interpreter configuration"),
        ("_xxsubinterpreters", C, "runs code in subinterpreters"),
        ("_interpreters", C, "runs code in subinterpreters"),
        ("jinja2", H, "template rendering can execute code"),
        // Process and OS access.
        ("os", C, "operating-system access"),
        ("posix", C, "operating-system access"),
        ("nt", C, "operating-system access"),
        ("posixpath", C, "os.path implementation (exposes os)"),
        ("ntpath", C, "os.path implementation (exposes os)"),
        ("genericpath", H, "file-system access"),
        ("subprocess", C, "runs processes"),
        ("_posixsubprocess", C, "runs processes"),
        ("_winapi", C, "Windows API access"),
        ("winreg", C, "Windows registry access"),
        ("msvcrt", C, "Windows runtime access"),
        ("pty", C, "spawns processes"),
        ("sys", C, "interpreter internals"),
        ("platform.popen", C, "runs shell commands"),
        ("platform._syscmd_ver", C, "runs shell commands"),
        ("platform._syscmd_file", C, "runs shell commands"),
        ("pydoc", C, "pager/locate: runs commands or imports"),
        ("_pyrepl", C, "pager: runs shell commands"),
        ("_osx_support", C, "runs shell commands"),
        ("_aix_support", C, "runs shell commands"),
        ("uuid._get_command_stdout", C, "runs shell commands"),
        ("uuid._popen", C, "runs shell commands"),
        ("uuid._find_mac", C, "runs shell commands"),
        ("test", C, "CPython test helpers run interpreters"),
        ("distutils", C, "spawns processes / writes files"),
        ("setuptools", C, "spawns processes / writes files"),
        ("pip", C, "installs packages"),
        ("ensurepip", C, "runs pip"),
        ("venv", C, "creates environments, runs processes"),
        ("asyncio", C, "subprocess and network access"),
        ("multiprocessing", C, "spawns processes"),
        ("concurrent", H, "runs callables in workers"),
        ("threading", H, "runs callables in threads"),
        ("_thread", H, "runs callables in threads"),
        ("signal", H, "installs signal handlers"),
        ("webbrowser", C, "launches programs"),
        ("antigravity", C, "launches a browser"),
        ("shutil", C, "file-system manipulation"),
        ("tempfile", C, "creates files"),
        ("io.open", C, "opens files"),
        ("io.open_code", C, "opens files"),
        ("io.FileIO", C, "opens files"),
        ("_io", C, "file access"),
        ("fileinput", C, "reads files"),
        ("glob", H, "lists the file system"),
        ("pathlib.Path.write_text", C, "writes files"),
        ("pathlib.Path.write_bytes", C, "writes files"),
        ("logging.FileHandler", C, "creates files"),
        ("logging.handlers", C, "files, sockets, e-mail"),
        ("logging.config", C, "configuration can execute code"),
        ("zipfile", H, "archive file access"),
        ("tarfile", H, "archive file access"),
        ("gzip.open", H, "opens files"),
        ("bz2.open", H, "opens files"),
        ("lzma.open", H, "opens files"),
        ("shelve", C, "opens pickled databases"),
        ("dbm", H, "opens database files"),
        ("sqlite3", H, "opens database files"),
        ("mmap", H, "maps files"),
        ("fcntl", H, "file-descriptor control"),
        ("resource", H, "process resource limits"),
        ("mailcap", C, "runs shell commands"),
        // Network.
        ("socket", C, "network access"),
        ("_socket", C, "network access"),
        ("ssl", C, "network access"),
        ("socketserver", C, "network server"),
        ("urllib", C, "network access"),
        ("http", C, "network access"),
        ("ftplib", C, "network access"),
        ("smtplib", C, "network access"),
        ("imaplib", C, "network access / spawns processes"),
        ("poplib", C, "network access"),
        ("nntplib", C, "network access"),
        ("telnetlib", C, "network access"),
        ("xmlrpc", C, "network access"),
        ("requests", C, "network access"),
        ("httpx", C, "network access"),
        ("aiohttp", C, "network access"),
        ("urllib3", C, "network access"),
        ("paramiko", C, "network access"),
        // Nested loaders: deserialise more untrusted data.
        ("pickle", C, "loads further pickles"),
        ("_pickle", C, "loads further pickles"),
        ("pickletools", H, "pickle internals"),
        ("dill", C, "loads further pickles / code"),
        ("cloudpickle", C, "builds functions from code"),
        ("joblib.load", C, "loads further pickles"),
        ("joblib._store_backends", H, "file-system access"),
        ("yaml.load", C, "may construct arbitrary objects"),
        ("yaml.unsafe_load", C, "constructs arbitrary objects"),
        ("yaml.full_load", H, "constructs objects"),
        ("pandas.read_pickle", C, "loads further pickles"),
        ("pandas.io.pickle", C, "loads further pickles"),
        ("copyreg.add_extension", H, "registers EXT opcode globals"),
        ("copyreg._inverted_registry", H, "EXT registry internals"),
        ("copyreg._extension_registry", H, "EXT registry internals"),
        // Indirection helpers that turn a safe-looking import into a call of anything.
        ("operator.attrgetter", C, "reaches arbitrary attributes"),
        ("operator.methodcaller", C, "calls arbitrary methods"),
        ("operator.itemgetter", H, "indirect access"),
        ("operator.call", C, "calls arbitrary callables"),
        ("_operator", C, "operator internals (attrgetter/methodcaller)"),
        ("functools.partial", H, "wraps arbitrary callables"),
        ("functools.reduce", H, "calls arbitrary callables"),
        ("functools.partialmethod", H, "wraps arbitrary callables"),
        ("builtins.map", H, "calls arbitrary callables"),
        ("builtins.filter", H, "calls arbitrary callables"),
        ("builtins.super", H, "reaches base-class attributes"),
        ("builtins.type", H, "builds classes"),
        ("builtins.classmethod", H, "wraps callables"),
        ("builtins.staticmethod", H, "wraps callables"),
        ("builtins.property", H, "wraps callables"),
        ("builtins.print", H, "writes output"),
        // PyTorch entry points that load code or more pickles.
        ("torch.load", C, "loads further pickles"),
        ("torch.serialization.load", C, "loads further pickles"),
        ("torch.serialization._load", C, "loads further pickles"),
        ("torch.storage._load_from_bytes", H, "calls torch.load"),
        ("torch.hub", C, "downloads and runs code"),
        ("torch.jit", C, "compiles/runs TorchScript"),
        ("torch._C", C, "native internals"),
        ("torch.ops", C, "calls registered operators"),
        ("torch._ops", C, "calls registered operators"),
        ("torch.classes", C, "calls registered classes"),
        ("torch.library", C, "registers operators"),
        ("torch.package", C, "loads packaged code"),
        ("torch.compile", C, "compiles code"),
        ("torch._dynamo", C, "compiles/evaluates code"),
        ("torch._inductor", C, "compiles and runs code"),
        ("torch.fx", C, "evaluates generated code"),
        ("torch.export", C, "loads exported programs"),
        ("torch.distributed", C, "network and process control"),
        ("torch.multiprocessing", C, "spawns processes"),
        ("torch.utils.bottleneck", C, "runs code under profilers"),
        ("torch.utils.collect_env", C, "runs shell commands"),
        ("torch.utils.cpp_extension", C, "compiles native code"),
        ("torch.utils.data.datapipes", C, "decoders load pickles"),
        ("torch.utils._config_module", C, "loads configuration pickles"),
        ("torch.utils.model_zoo", C, "downloads models"),
        ("torch.testing", H, "testing internals"),
        ("torch._export", C, "loads exported programs"),
        ("torch._functorch", H, "compiler internals"),
        // NumPy entry points that read files or run code.
        ("numpy.load", C, "loads further pickles"),
        ("numpy.lib.npyio", C, "file loading"),
        ("numpy.loadtxt", H, "reads files"),
        ("numpy.genfromtxt", H, "reads files"),
        ("numpy.fromfile", H, "reads files"),
        ("numpy.save", H, "writes files"),
        ("numpy.savez", H, "writes files"),
        ("numpy.savetxt", H, "writes files"),
        ("numpy.memmap", H, "maps files"),
        ("numpy.testing", C, "runstring executes code"),
        ("numpy.f2py", C, "evaluates expressions / compiles"),
        ("numpy.distutils", C, "spawns processes"),
        ("numpy.ctypeslib", C, "loads native libraries"),
        ("sklearn.datasets", H, "downloads data"),
        ("sklearn.utils._testing", H, "testing helpers run code"),
        ("keras", H, "loads models with code (Lambda layers)"),
        ("tensorflow", H, "file and code access"),
    ]
};

/// Loader functions whose `bytes`/`str` argument is itself a pickle to scan recursively.
const NESTED_LOADERS: &[&str] = &[
    "pickle.loads",
    "pickle.load",
    "_pickle.loads",
    "_pickle.load",
    "dill.loads",
    "cloudpickle.loads",
    "torch.load",
    "torch.serialization.load",
    "torch.storage._load_from_bytes",
    "numpy.load",
    "joblib.load",
    "pandas.read_pickle",
];

/// Name components that reach interpreter internals when walked with getattr.
fn is_dunder(component: &str) -> bool {
    component.len() > 4 && component.starts_with("__") && component.ends_with("__")
}

fn prefix_matches(path: &str, prefix: &str) -> bool {
    path == prefix || (path.starts_with(prefix) && path.as_bytes().get(prefix.len()) == Some(&b'.'))
}

/// The dotted path the policy matches on: normalized module, a dot, then the (possibly dotted)
/// name.
pub fn full_path(module: &str, name: &str) -> String {
    let m = normalize_module(module);
    let mut s = String::with_capacity(m.len() + 1 + name.len());
    s.push_str(m);
    s.push('.');
    s.push_str(name);
    s
}

/// Classify an import of `name` from `module`.
pub fn classify(module: &str, name: &str) -> Decision {
    let path = full_path(module, name);
    classify_path(&path)
}

/// Classify a dotted path as produced by [`full_path`].
pub fn classify_path(path: &str) -> Decision {
    if ALLOW.contains(&path) {
        return Decision::Allowed;
    }
    // Most specific deny prefix wins (longest match), so messages name the real culprit.
    let mut best: Option<&(&str, Severity, &str)> = None;
    for entry in DENY {
        if prefix_matches(path, entry.0) && best.is_none_or(|b| entry.0.len() > b.0.len()) {
            best = Some(entry);
        }
    }
    if let Some(&(_, severity, reason)) = best {
        return Decision::Denied { severity, reason };
    }
    if path.split('.').any(is_dunder) {
        return Decision::Denied {
            severity: Severity::High,
            reason: "walks dunder attributes (interpreter internals)",
        };
    }
    if let Some(name) = path.strip_prefix("numpy.")
        && NUMPY_SCALARS.contains(&name)
    {
        return Decision::Allowed;
    }
    if is_sklearn_class(path) || is_scipy_sparse(path) || is_cython_unpickler(path) {
        return Decision::Allowed;
    }
    // A dotted path that continues past an allowed global is attribute traversal.
    if ALLOW.iter().any(|a| path.len() > a.len() && prefix_matches(path, a)) {
        return Decision::Denied { severity: Severity::High, reason: "walks attributes of an allowed global" };
    }
    Decision::Unknown
}

/// scikit-learn pickles import estimator and helper *classes* by their defining module
/// (`sklearn.linear_model._logistic.LogisticRegression`, `sklearn.tree._tree.Tree`). Classes are
/// CamelCase; functions (which could be called with attacker arguments) are not allowed here.
fn is_sklearn_class(path: &str) -> bool {
    let Some(rest) = path.strip_prefix("sklearn.") else { return false };
    let Some((module, class)) = rest.rsplit_once('.') else { return false };
    !module.is_empty()
        && class.chars().next().is_some_and(|c| c.is_ascii_uppercase())
        && class.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Cython's generated `__pyx_unpickle_<Class>` helpers in NumPy and scikit-learn extension
/// modules: they rebuild an instance of that one class from its state.
fn is_cython_unpickler(path: &str) -> bool {
    if !(path.starts_with("numpy.") || path.starts_with("sklearn.")) {
        return false;
    }
    let Some((_, name)) = path.rsplit_once('.') else { return false };
    name.strip_prefix("__pyx_unpickle_").is_some_and(|class| {
        class.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && class.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

/// `scipy.sparse.<module>.<fmt>_matrix` / `_array` classes.
fn is_scipy_sparse(path: &str) -> bool {
    let Some(rest) = path.strip_prefix("scipy.sparse.") else { return false };
    let class = rest.rsplit('.').next().unwrap_or("");
    (class.ends_with("_matrix") || class.ends_with("_array"))
        && class.chars().all(|c| c.is_ascii_lowercase() || c == '_')
}

/// Whether a call to `path` deserialises its first `bytes`/`str` argument.
pub fn is_nested_loader(path: &str) -> bool {
    NESTED_LOADERS.contains(&path)
}

/// Whether a string passed to a call looks like Python source or a shell command. Used only to
/// raise the severity of calls to *unknown* callables.
pub fn looks_like_code(s: &str) -> bool {
    const NEEDLES: &[&str] = &[
        "__import__",
        "import os",
        "import subprocess",
        "os.system",
        "os.popen",
        "subprocess.",
        "exec(",
        "eval(",
        "compile(",
        "/bin/sh",
        "/bin/bash",
        "cmd.exe",
        "powershell",
        "$(",
        "`",
        "curl ",
        "wget ",
        "rm -rf",
        "getattr(",
        "builtins",
    ];
    NEEDLES.iter().any(|n| s.contains(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn denied(m: &str, n: &str) -> bool {
        matches!(classify(m, n), Decision::Denied { .. })
    }

    #[test]
    fn deny_matches_components_and_aliases() {
        assert!(denied("os", "system"));
        assert!(denied("os", "path.join"));
        assert!(denied("os.path", "join"));
        assert!(denied("posixpath", "os"));
        assert!(denied("__builtin__", "eval"));
        assert!(denied("builtins", "getattr"));
        assert!(denied("torch", "load"));
        assert!(denied("torch", "serialization.load"));
        assert!(!denied("osx", "thing"));
        assert!(denied("collections", "OrderedDict.__reduce__"));
        assert!(denied("torch._utils", "_rebuild_tensor.__globals__"));
        assert!(denied("collections", "OrderedDict.fromkeys"));
    }

    #[test]
    fn allow_is_exact() {
        assert_eq!(classify("collections", "OrderedDict"), Decision::Allowed);
        assert_eq!(classify("__builtin__", "set"), Decision::Allowed);
        assert_eq!(classify("sklearn.linear_model._logistic", "LogisticRegression"), Decision::Allowed);
        assert_eq!(classify("sklearn.utils", "some_function"), Decision::Unknown);
        assert_eq!(classify("numpy", "float64"), Decision::Allowed);
        assert_eq!(classify("numpy.random._pickle", "__randomstate_ctor"), Decision::Allowed);
        assert_eq!(classify("mypkg", "Thing"), Decision::Unknown);
    }
}
