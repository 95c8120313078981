"""HDF5 network descriptions: lava-dl's netx schema plus the `/neuro_deploy` extension.

`/layer/<i>` holds every neuron layer in topological order, in exactly the netx schema
when netx can express it on its own (an input, or a CUBA-LIF conv fed only by the
previous layer through one plain conv), so a plain chain loads unchanged with
`lava.lib.dl.netx.hdf5.Network`. Everything else is described in `/neuro_deploy` (format
version 2, see docs/format.md): layer kinds and parameters, the synapses (edges) with
integer weights, exponents and delays, placement, timing, scales, the source checkpoint
and the quantization report. Files are written to a temporary name and renamed.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from neuro_deploy.common.atomic import atomic_path
from neuro_deploy.errors import NeuroDeployError
from neuro_deploy.formats.network_file import NetworkFile, is_plain_netx, open_hdf5, read_tree
from neuro_deploy.formats.netx_plain import read_plain
from neuro_deploy.formats.netx_plain_write import write_conv_geometry, write_cuba_neuron
from neuro_deploy.ir import graph as ir
from neuro_deploy.ir.graph import LIF, Edge, Graph, Input, Node, Output, Synapse, pair
from neuro_deploy.ir.quantized import PARAMS_BY_KIND, QLayer, QSynapse, Quantized
from neuro_deploy.loihi.limits import check

FORMAT_VERSION = 2
#: the largest |exponent| or |shift| a file may give: the back ends shift 64-bit integers by them
MAX_EXPONENT = 63
INT16 = np.iinfo(np.int16)
NODE_KINDS: dict[str, type[Node]] = {
    cls.kind: cls for cls in vars(ir).values()
    if isinstance(cls, type) and issubclass(cls, Node) and cls is not Node
}


def placement(node: Node) -> str:
    if isinstance(node, Input):
        return "io"
    return "host" if node.role == "host" else "neurocore"


# ---- writing ---------------------------------------------------------------------------------

def _put(group: h5py.Group, key: str, value: Any) -> None:
    """Store a parameter value as datasets (scalars, arrays, strings, nested tuples as groups)."""
    if value is None:
        return
    if isinstance(value, (tuple, list)) and value and not np.isscalar(value[0]):
        sub = group.create_group(key)
        sub.create_dataset("__sequence__", data=len(value))
        for i, v in enumerate(value):
            _put(sub, str(i), v)
    elif isinstance(value, str):
        group.create_dataset(key, data=np.bytes_(value))
    else:
        group.create_dataset(key, data=np.asarray(value))


def _netx_conv(q: Quantized, name: str, prev: str | None) -> ir.Synapse | None:
    """The single plain conv synapse from the previous layer, if netx can express this LIF layer."""
    node = q.graph.nodes[name]
    ins = q.graph.inputs(name)
    if not isinstance(node, LIF) or len(ins) != 1:
        return None
    syn = q.graph.nodes[ins[0]]
    ok = (isinstance(syn, Synapse) and q.graph.inputs(syn.name) == [prev] and syn.upsample == 1 and syn.delay == 0
          and syn.width == syn.weight.shape[0] and q.synapses[syn.name].shift >= 0)
    return syn if ok else None


def _write_netx_layer(g: h5py.Group, q: Quantized, name: str, prev: str | None) -> None:
    node, layer = q.graph.nodes[name], q.layers[name]
    g.create_dataset("shape", data=np.asarray(node.shape, np.int64))
    if isinstance(node, Input):  # no neuron: netx feeds the graded pixels straight to the first synapse
        g.create_dataset("type", data=np.array([b"input"]))
        return
    syn = _netx_conv(q, name, prev)
    if syn is None:
        g.create_dataset("type", data=np.array([node.kind.encode()]))
        return
    qs = q.synapses[syn.name]
    out, cin = syn.weight.shape[:2]
    write_cuba_neuron(g, layer.params.du + 1, layer.params.dv, layer.params.vth)
    g.create_dataset("type", data=np.array([b"conv"]))
    g.create_dataset("weight", data=qs.mantissa.astype(np.int64) << qs.shift)
    write_conv_geometry(g, (out, cin), list(syn.weight.shape[2:]), list(pair(syn.stride)), list(pair(syn.padding)))


def write_network(path: str | Path, q: Quantized, meta: dict[str, Any]) -> None:
    """Write the quantized network; `meta` (source, settings, latency...) goes into the extension."""
    if q.free_running:  # its file is already the netx description; ours would hold none of its drive
        raise NeuroDeployError(f"{path}: a network read from a plain netx file is not written again; keep (copy) "
                               "its original file, or `neuro-deploy export --nir` it")
    graph = q.graph
    order = [n for n in graph.topological() if not isinstance(graph.nodes[n], (Synapse, Output))]
    index = {n: i for i, n in enumerate(order)}
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        layers = f.create_group("layer")
        ext = f.create_group("neuro_deploy")
        ext.create_dataset("format_version", data=FORMAT_VERSION)
        ext.create_dataset("meta", data=np.bytes_(json.dumps(meta, sort_keys=True)))
        ext.create_dataset("headroom", data=q.headroom)
        ext.create_dataset("output", data=index[graph.inputs(graph.output())[0]])
        ext_layers = ext.create_group("layers")
        prev = None
        for name in order:
            node, layer = graph.nodes[name], q.layers[name]
            _write_netx_layer(layers.create_group(str(index[name])), q, name, prev)
            g = ext_layers.create_group(str(index[name]))
            for key, value in (("name", name), ("module", node.module), ("kind", node.kind),
                               ("placement", placement(node)), ("start", node.start), ("emit", node.emit),
                               ("steps", node.steps), ("shape", node.shape)):
                _put(g, key, value)
            params = g.create_group("params")
            for key, value in node.params().items():
                _put(params, key, value)
            qg = g.create_group("quant")
            for key, value in dataclasses.asdict(layer).items():
                if key == "params":
                    sub = qg.create_group("params")
                    for pk, pv in (value or {}).items():
                        _put(sub, pk, pv)
                else:
                    _put(qg, key, value)
            prev = name
        syns = ext.create_group("synapses")
        for j, name in enumerate(n for n in graph.topological() if isinstance(graph.nodes[n], Synapse)):
            node, qs = graph.nodes[name], q.synapses[name]
            (src,) = graph.inputs(name)
            edge = next(e for e in graph.edges if e.src == name)
            g = syns.create_group(str(j))
            for key, value in (("name", name), ("module", node.module), ("src", index[src]), ("dst", index[edge.dst]),
                               ("port", edge.port), ("stride", node.stride), ("padding", node.padding),
                               ("upsample", node.upsample), ("offset", node.offset), ("width", node.width),
                               ("delay", node.delay), ("stage", node.stage), ("start", node.start), ("emit", node.emit), ("steps", node.steps),
                               ("shape", node.shape)):
                _put(g, key, value)
            for key, value in dataclasses.asdict(qs).items():
                _put(g, key, value)


# ---- reading ---------------------------------------------------------------------------------

def read_network(path: str | Path, skip: tuple[str, ...] = ()) -> NetworkFile:
    """Any network file as the graph IR: one written by `write_network`, or a plain netx file
    (lava-dl's own; `skip`: its trailing layer types to drop, see `netx_plain.read_plain`)."""
    path = str(path)
    if is_plain_netx(path):
        return read_plain(path, skip)
    if skip:
        raise NeuroDeployError(f"--skip-layer applies to plain netx files; {path} runs all its layers")
    with open_hdf5(path) as f:
        if not isinstance(f["neuro_deploy"], h5py.Group):
            raise NeuroDeployError(f"{path}: /neuro_deploy is not a group")
        tree = read_tree(f["neuro_deploy"], path)
    version = tree.get("format_version")
    if version is None:
        raise NeuroDeployError(f"{path}: /neuro_deploy/format_version is missing")
    if not isinstance(version, int) or version != FORMAT_VERSION:
        raise NeuroDeployError(f"{path}: format version {_shown(version)} is not supported (expected {FORMAT_VERSION})")
    _check_exponents(tree, path)
    try:
        net = _read_extension(_nest(tree), path)
    except (KeyError, ValueError, TypeError) as exc:
        raise NeuroDeployError(f"{path}: malformed /neuro_deploy group ({exc})") from None
    _check_structure(net.quantized.graph, path)
    _check_meta(net)
    declared = set(net.meta.get("violations", []))
    undeclared = [v for v in check(net.quantized) if str(v) not in declared]
    if undeclared:
        raise NeuroDeployError(f"{path} breaks Loihi's limits in {len(undeclared)} place"
                               f"{'s' if len(undeclared) > 1 else ''}: " + "; ".join(map(str, undeclared)))
    return net


def _check_structure(graph: Graph, path: str) -> None:
    """Refuse what a hand-edited or hostile file could hold and the simulators would trust: a
    stride, upsampling or padding no conv has, a weight that is not `(out, in, k, k)`, channels
    placed outside their layer, or shapes the layers' inputs do not produce."""
    from neuro_deploy.ir.shapes import infer_shapes

    for node in graph.nodes.values():
        if any(int(v) <= 0 for v in node.shape) or node.steps < 0:
            raise NeuroDeployError(f"{path}: {node.name} has shape {list(node.shape)} and {node.steps} steps; "
                                   "expected positive sizes")
        if not isinstance(node, Synapse):
            continue
        w = node.weight
        if node.stride < 1 or node.upsample < 1 or node.padding < 0:
            raise NeuroDeployError(f"{path}: synapse {node.name} has stride {node.stride}, upsample {node.upsample}, "
                                   f"padding {node.padding}; expected stride and upsample >= 1, padding >= 0")
        if w.ndim != 4 or w.shape[2] != w.shape[3] or min(w.shape) < 1:
            raise NeuroDeployError(f"{path}: synapse {node.name} has a weight of shape {list(w.shape)}; "
                                   "expected (out, in, k, k)")
        if node.offset < 0 or node.offset + w.shape[0] > node.width:
            raise NeuroDeployError(f"{path}: synapse {node.name} writes channels {node.offset}..."
                                   f"{node.offset + w.shape[0] - 1} of a {node.width}-channel layer")
    recorded = {n: (node.shape, node.steps) for n, node in graph.nodes.items()}
    try:
        infer_shapes(graph)
    except NeuroDeployError as exc:
        raise NeuroDeployError(f"{path}: {exc}") from None
    finally:
        wrong = next((n for n, node in graph.nodes.items() if node.shape != recorded[n][0]), None)
        inferred = graph.nodes[wrong].shape if wrong else None
        for n, node in graph.nodes.items():
            node.shape, node.steps = recorded[n]
    if wrong is not None:
        raise NeuroDeployError(f"{path}: {wrong} is recorded as {list(recorded[wrong][0])}, but its inputs "
                               f"make {list(inferred)}")


def _nest(tree: dict[str, Any]) -> dict[str, Any]:
    """`read_tree`'s flat paths as nested dicts, one per group; a group `_put` wrote for a sequence
    (with `__sequence__`) becomes the tuple again."""
    root: dict[str, Any] = {}
    for key, value in tree.items():
        *groups, leaf = key.split("/")
        node = root
        for name in groups:
            node = node.setdefault(name, {})
        node[leaf] = value
    return _sequences(root)


def _sequences(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    if "__sequence__" in node:
        return tuple(_sequences(node[str(i)]) for i in range(int(node["__sequence__"])))
    return {k: _sequences(v) for k, v in node.items()}


def _check_exponents(tree: dict[str, Any], path: str) -> None:
    """Every exponent and shift an integer the back ends can apply (|e| <= 63: they shift 64-bit
    integers; a larger one also overflows `2.0 ** exp`), before any of them is used."""
    for key, value in tree.items():
        leaf = key.rsplit("/", 1)[-1]
        if leaf not in ("exp", "shift") and not leaf.endswith(("_exp", "_shift")):
            continue
        v = np.asarray(value)
        if v.dtype.kind not in "iu" or (v.size and (v.min() < -MAX_EXPONENT or v.max() > MAX_EXPONENT)):
            shown = v.tolist() if v.size <= 4 else f"{v.size} values"
            raise NeuroDeployError(f"{path}: /neuro_deploy/{key} is {shown}, expected integers in "
                                   f"[-{MAX_EXPONENT}, {MAX_EXPONENT}]")


def _mantissa(value: Any, where: str) -> np.ndarray:
    """The stored weights as int16 mantissas; floats or values beyond 16 bits are refused, never cast."""
    m = np.asarray(value)
    if m.dtype.kind not in "iu":
        raise NeuroDeployError(f"{where}/mantissa holds {m.dtype} values, expected 16-bit integer mantissas")
    if m.size and (m.min() < INT16.min or m.max() > INT16.max):
        raise NeuroDeployError(f"{where}/mantissa holds values in [{m.min()}, {m.max()}], beyond 16-bit mantissas")
    return m.astype(np.int16, copy=False)


def _shown(value: Any) -> str:
    """A value for a one-line message: strings quoted, arrays as lists, cut short."""
    return (repr(value) if isinstance(value, str) else str(np.asarray(value, dtype=object).tolist()))[:60]


class _Fields:
    """One group's values, each taken as the type the format gives it, or refused naming its key: a
    float where an integer belongs would be truncated, a dataset where a group belongs misread."""

    def __init__(self, node: Any, where: str) -> None:
        if not isinstance(node, dict):
            raise NeuroDeployError(f"{where} is not a group")
        self.node, self.where = node, where

    def __getitem__(self, key: str) -> Any:
        if key not in self.node:
            raise NeuroDeployError(f"{self.where}/{key} is missing")
        return self.node[key]

    def group(self, key: str) -> _Fields:
        return _Fields(self.node.get(key, {}), f"{self.where}/{key}")

    def members(self, key: str) -> list[_Fields]:
        """The numbered groups `key/0 .. key/<n-1>`, in order."""
        group = self.group(key)
        return [_Fields(group[str(i)], f"{group.where}/{i}") for i in range(len(group.node))]

    def int(self, key: str) -> int:
        value = self[key]
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise NeuroDeployError(f"{self.where}/{key} is {_shown(value)}, expected an integer")
        return int(value)

    def text(self, key: str) -> str:
        value = self[key]
        if not isinstance(value, str):
            raise NeuroDeployError(f"{self.where}/{key} is {_shown(value)}, expected a string")
        return value

    def shape(self, key: str) -> tuple[int, ...]:
        value = np.asarray(self[key])
        if value.ndim != 1 or value.dtype.kind not in "iu":
            raise NeuroDeployError(f"{self.where}/{key} is {_shown(value)}, expected a list of integers")
        return tuple(int(v) for v in value)


def _read_extension(ext: dict[str, Any], path: str) -> NetworkFile:
    root = _Fields(ext, f"{path}: /neuro_deploy")
    graph = Graph()
    layers: dict[str, QLayer] = {}
    names: dict[int, str] = {}
    for i, g in enumerate(root.members("layers")):
        kind = g.text("kind")
        if kind not in NODE_KINDS:
            raise NeuroDeployError(f"{path}: layer {i} has unknown kind {kind!r}")
        node = NODE_KINDS[kind](g.text("name"), g.text("module"), **g.group("params").node)
        node.shape, node.steps = g.shape("shape"), g.int("steps")
        node.start, node.emit = g.int("start"), g.int("emit")
        graph.nodes[node.name] = node
        names[i] = node.name
        quant = dict(g.group("quant").node)
        qparams = _Fields(quant.pop("params", {}), f"{g.where}/quant/params").node
        params = PARAMS_BY_KIND[kind](**qparams) if kind in PARAMS_BY_KIND else None
        layers[node.name] = QLayer(**quant, params=params)
    synapses: dict[str, QSynapse] = {}
    for v in root.members("synapses"):
        qs = QSynapse(_mantissa(v["mantissa"], v.where), v.int("exp"), v.int("shift"), float(v["clipped"]),
                      float(v["error"]), float(v["acc_peak"]))
        syn = Synapse(v.text("name"), v.text("module"), weight=qs.real_weight(), stride=v.int("stride"),
                      padding=v.int("padding"), upsample=v.int("upsample"), offset=v.int("offset"),
                      width=v.int("width"), delay=v.int("delay"), stage=bool(v["stage"]))
        syn.shape, syn.steps = v.shape("shape"), v.int("steps")
        syn.start, syn.emit = v.int("start"), v.int("emit")
        graph.nodes[syn.name] = syn
        graph.edges.append(Edge(names[v.int("src")], syn.name, 0))
        graph.edges.append(Edge(syn.name, names[v.int("dst")], v.int("port")))
        synapses[syn.name] = qs
    source = graph.nodes[names[root.int("output")]]
    out = Output("output", "", shape=source.shape, steps=source.steps, start=source.emit, emit=source.emit)
    graph.nodes[out.name] = out
    graph.edges.append(Edge(source.name, out.name, 0))
    meta = json.loads(root.text("meta"))
    return NetworkFile(Quantized(graph, layers, synapses, float(root["headroom"])), meta, path)


def tile_steps(q: Quantized) -> int:
    """The steps one tile of a converted network runs: up to and including its output's step."""
    return q.graph.nodes[q.graph.output()].emit + 1


def _check_meta(net: NetworkFile) -> None:
    """The metadata the commands size their runs by (input shape, steps, T) must say what the graph
    says: a hand-edited claim of 10^9 steps or a 10^9 x 10^9 input would otherwise be believed."""
    q, meta = net.quantized, net.meta
    source = next((n for n in q.graph.nodes.values() if isinstance(n, Input)), None)
    if source is None:
        raise NeuroDeployError(f"{net.path}: no input layer")
    if not isinstance(meta, dict) or not isinstance(meta.get("settings"), dict):
        raise NeuroDeployError(f"{net.path}: /neuro_deploy/meta is not an object with settings")
    for key, claimed, actual in (("input_shape", meta.get("input_shape"), list(source.shape)),
                                 ("steps", meta.get("steps"), tile_steps(q)),
                                 ("latency", meta.get("latency"), tile_steps(q) - 1),
                                 ("settings/timesteps", meta["settings"].get("timesteps"), source.steps)):
        if claimed is None:
            raise NeuroDeployError(f"{net.path}: /neuro_deploy/meta has no {key} (the network's is {actual})")
        if claimed != actual or isinstance(claimed, bool):
            raise NeuroDeployError(f"{net.path}: /neuro_deploy/meta gives {key} {_shown(claimed)}, but the network's "
                                   f"is {actual}")
