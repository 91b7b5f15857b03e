"""PyTorch mirrors of nabla's model files, for the scripts in bench/: the
network of a sequential model file as an nn.Sequential (the same modules
in the same order, so the same seed draws the same initial weights as a
hand-written PyTorch model), its optimizer and training settings as
`nabla train` reads them, and Fashion-MNIST from Debian's IDX files.
Needs Debian's python3-torch; nabla's build and tests never import it.
"""
import gzip
import json
import os

import numpy as np
import torch
import torch.nn as nn

DATA = "/usr/share/datasets/fashion-mnist"
MODELS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "models")


def model_path(name):
    """models/NAME.json, or NAME itself when it names a file."""
    return name if name.endswith(".json") else os.path.join(MODELS, name + ".json")


def load(name):
    with open(model_path(name)) as f:
        return json.load(f)


def idx(name, data=DATA):
    """One IDX file (optionally gzipped) as a uint8 array."""
    path = os.path.join(data, name)
    opener = gzip.open if os.path.exists(path + ".gz") else open
    with opener(path + ".gz" if opener is gzip.open else path, "rb") as f:
        raw = f.read()
    dims = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * dims).reshape(shape)


def fashion_mnist(train=True, data=DATA):
    """Images [N, 1, 28, 28] and labels [N], both uint8 as in the files."""
    part = "train" if train else "t10k"
    x = idx(f"{part}-images-idx3-ubyte", data)
    return x.reshape(x.shape[0], 1, *x.shape[1:]), idx(f"{part}-labels-idx1-ubyte", data)


def _pair(v):
    return tuple(v) if isinstance(v, list) else (v, v)


def _activation(kind, layer):
    if kind == "relu":
        return nn.ReLU()
    if kind == "relu6":
        return nn.ReLU6()
    if kind == "sigmoid":
        return nn.Sigmoid()
    if kind == "tanh":
        return nn.Tanh()
    if kind == "leaky_relu":
        return nn.LeakyReLU(layer.get("negative_slope", 0.01))
    if kind == "elu":
        return nn.ELU(layer.get("alpha", 1.0))
    if kind == "softmax":
        return nn.Softmax(layer.get("dim", 1))
    if kind == "gelu":
        return nn.GELU(approximate=layer.get("approximate", "none"))
    if kind == "silu":
        return nn.SiLU()
    if kind == "hardswish":
        return nn.Hardswish()
    if kind == "softplus":
        return nn.Softplus(layer.get("beta", 1.0), layer.get("threshold", 20.0))
    return None


def build(spec):
    """The nn.Sequential of a model file's "layers"; the graph form is not
    mirrored."""
    if "layers" not in spec:
        raise ValueError(f"{spec.get('name', 'model')}: only the sequential form is mirrored")
    shape = list(spec["input"])
    mods = []
    names = {}  # a module's index -> its layer's name in nabla's tensor names
    for i, layer in enumerate(spec["layers"]):
        names[len(mods)] = layer.get("name", str(i))
        t = layer["type"]
        if t in ("conv2d", "conv1d"):
            two = t == "conv2d"
            k = _pair(layer["kernel_size"]) if two else layer["kernel_size"]
            s = _pair(layer.get("stride", 1)) if two else layer.get("stride", 1)
            p = layer.get("padding", 0)
            p = p if isinstance(p, str) else (_pair(p) if two else p)
            d = _pair(layer.get("dilation", 1)) if two else layer.get("dilation", 1)
            cls = nn.Conv2d if two else nn.Conv1d
            mod = cls(shape[0], layer["out_channels"], k, stride=s, padding=p, dilation=d,
                      groups=layer.get("groups", 1), bias=layer.get("bias", True))
        elif t == "conv_transpose2d":
            mod = nn.ConvTranspose2d(shape[0], layer["out_channels"], _pair(layer["kernel_size"]),
                                     stride=_pair(layer.get("stride", 1)),
                                     padding=_pair(layer.get("padding", 0)),
                                     output_padding=_pair(layer.get("output_padding", 0)),
                                     groups=layer.get("groups", 1),
                                     dilation=_pair(layer.get("dilation", 1)),
                                     bias=layer.get("bias", True))
        elif t == "upsample":
            size, scale = layer.get("size"), layer.get("scale_factor")
            mode = layer.get("mode", "nearest")
            mod = nn.Upsample(size=_pair(size) if size is not None else None,
                              scale_factor=_pair(scale) if scale is not None else None,
                              mode=mode,
                              align_corners=layer.get("align_corners", False)
                              if mode == "bilinear" else None)
        elif t == "layer_norm":
            ns = layer.get("normalized_shape", shape)
            mod = nn.LayerNorm(ns if isinstance(ns, list) else [ns], eps=layer.get("eps", 1e-5),
                               elementwise_affine=layer.get("elementwise_affine", True),
                               bias=layer.get("bias", True))
        elif t == "group_norm":
            mod = nn.GroupNorm(layer["num_groups"], shape[0], eps=layer.get("eps", 1e-5),
                               affine=layer.get("affine", True))
        elif t in ("max_pool2d", "avg_pool2d"):
            k = _pair(layer["kernel_size"])
            s = _pair(layer.get("stride", layer["kernel_size"]))
            p = _pair(layer.get("padding", 0))
            mod = nn.MaxPool2d(k, s, p) if t == "max_pool2d" else nn.AvgPool2d(k, s, p)
        elif t == "global_avg_pool2d":
            mod = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        elif t == "linear":
            mod = nn.Linear(shape[0], layer["out_features"], bias=layer.get("bias", True))
        elif t == "flatten":
            mod = nn.Flatten()
        elif t == "dropout":
            mod = nn.Dropout(layer.get("p", 0.5))
        elif t == "dropout2d":
            mod = nn.Dropout2d(layer.get("p", 0.5))
        elif t == "batch_norm":
            cls = nn.BatchNorm2d if len(shape) == 3 else nn.BatchNorm1d
            mod = cls(shape[0], eps=layer.get("eps", 1e-5), momentum=layer.get("momentum", 0.1),
                      affine=layer.get("affine", True))
        else:
            mod = _activation(t, layer)
            if mod is None:
                raise ValueError(f"layer type {t!r} is not mirrored")
        mods.append(mod)
        act = layer.get("activation")
        if act:
            mods.append(_activation(act, {}))
        with torch.no_grad():
            shape = list(nn.Sequential(*mods[-2 if act else -1:]).eval()(
                torch.zeros(1, *shape)).shape[1:])
    net = nn.Sequential(*mods).train()
    net.nabla_names = names
    return net


def nabla_state_dict(net):
    """net.state_dict() under nabla's names ("conv1.weight" for the module
    Sequential calls "0"); PyTorch's layouts are nabla's."""
    out = {}
    for key, value in net.state_dict().items():
        index, rest = key.split(".", 1)
        out[f"{net.nabla_names[int(index)]}.{rest}"] = value
    return out


_DTYPES = {torch.float32: "F32", torch.float64: "F64", torch.int64: "I64"}


def save_safetensors(path, tensors):
    """Writes {name: tensor} as a safetensors file (the format's header of
    names, dtypes, shapes and offsets, then the little-endian data), as the
    safetensors package's save_file does."""
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        a = t.detach().cpu().numpy()
        raw = a.astype(a.dtype.newbyteorder("<")).tobytes()  # C order, little-endian
        header[name] = {"dtype": _DTYPES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)
    with open(path, "wb") as f:
        f.write(len(head).to_bytes(8, "little"))
        f.write(head)
        for raw in blobs:
            f.write(raw)


def optimizer(spec, params):
    """The model file's optimizer over PyTorch's defaults (SGD with lr 0.01
    when the file has none), as nb_model_train_opts reads it."""
    o = dict(spec.get("optimizer", {}))
    kind = o.pop("type", "sgd")
    wd = o.get("weight_decay")
    if kind == "sgd":
        return torch.optim.SGD(params, lr=o.get("lr", 0.01), momentum=o.get("momentum", 0),
                               dampening=o.get("dampening", 0), nesterov=o.get("nesterov", False),
                               weight_decay=wd or 0)
    if kind in ("adam", "adamw"):
        cls = torch.optim.Adam if kind == "adam" else torch.optim.AdamW
        return cls(params, lr=o.get("lr", 0.001), betas=tuple(o.get("betas", (0.9, 0.999))),
                   eps=o.get("eps", 1e-8),
                   weight_decay=wd if wd is not None else (0 if kind == "adam" else 0.01))
    if kind == "rmsprop":
        return torch.optim.RMSprop(params, lr=o.get("lr", 0.01), alpha=o.get("alpha", 0.99),
                                   eps=o.get("eps", 1e-8), weight_decay=wd or 0,
                                   momentum=o.get("momentum", 0),
                                   centered=o.get("centered", False))
    raise ValueError(f"optimizer {kind!r} is not mirrored")


def training(spec):
    """The training section over `nabla train`'s defaults."""
    t = {"batch_size": 64, "epochs": 5, "validation_split": 0.0, "seed": 0}
    t.update(spec.get("training", {}))
    return t
