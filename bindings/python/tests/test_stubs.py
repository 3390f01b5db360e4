"""The type stubs (``atom_protect/__init__.pyi``) say what the extension
has: the same classes, methods and properties, and the same parameters,
of the same kinds, with defaults where the extension has them."""

import ast
import inspect

import pytest

import atom_protect
from conftest import TESTS_DIR

STUB = TESTS_DIR.parent / "python" / "atom_protect" / "__init__.pyi"
CLASSES = ["SecretsEncryption", "Secrets", "CredentialStore", "AsyncCredentialStore"]


def stub_classes():
    tree = ast.parse(STUB.read_text())
    return {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}


def stub_params(fn: ast.FunctionDef, static: bool):
    args = fn.args
    positional = args.posonlyargs + args.args
    if not static:
        positional = positional[1:]  # self
    first_default = len(positional) - len(args.defaults)
    params = [
        (a.arg, "POSITIONAL_OR_KEYWORD", i >= first_default) for i, a in enumerate(positional)
    ]
    if args.vararg:
        params.append(("*", "VAR_POSITIONAL", False))
    params += [
        (a.arg, "KEYWORD_ONLY", d is not None) for a, d in zip(args.kwonlyargs, args.kw_defaults)
    ]
    return params


def runtime_params(sig: inspect.Signature):
    params = []
    for p in sig.parameters.values():
        if p.name == "self":
            continue
        if p.kind is p.VAR_POSITIONAL:
            params.append(("*", "VAR_POSITIONAL", False))
            continue
        params.append((p.name, p.kind.name, p.default is not p.empty))
    return params


def test_the_stub_exports_what_the_package_exports():
    tree = ast.parse(STUB.read_text())
    (exported,) = [
        node.value for node in tree.body if isinstance(node, ast.Assign) and node.targets[0].id == "__all__"
    ]

    assert sorted(ast.literal_eval(exported)) == sorted(atom_protect.__all__)
    assert set(stub_classes()) == set(CLASSES)


@pytest.mark.parametrize("name", CLASSES)
def test_the_stub_of_each_class_matches_the_extension(name):
    cls = getattr(atom_protect, name)
    stub = stub_classes()[name]
    methods = {n.name: n for n in stub.body if isinstance(n, ast.FunctionDef)}

    public = {n for n in vars(cls) if not n.startswith("_")} | ({"__enter__", "__exit__"} & set(vars(cls)))
    assert set(methods) - {"__new__"} == public

    # PyO3 classes are made by __new__; Secrets has no constructor.
    assert ("__new__" in methods) == (name != "Secrets")
    if "__new__" in methods:
        assert stub_params(methods["__new__"], static=False) == runtime_params(inspect.signature(cls))
    for method_name in public:
        stub_fn = methods[method_name]
        decorators = {d.id for d in stub_fn.decorator_list if isinstance(d, ast.Name)}
        attribute = inspect.getattr_static(cls, method_name)
        if type(attribute).__name__ == "getset_descriptor":
            assert decorators == {"property"}, method_name
            continue
        static = isinstance(attribute, staticmethod)
        assert ("staticmethod" in decorators) == static, method_name
        expected = runtime_params(inspect.signature(getattr(cls, method_name)))
        if method_name == "__exit__":
            expected = [("*", "VAR_POSITIONAL", False)]
        assert stub_params(stub_fn, static) == expected, method_name
