"""The Python steps of scripts/convert-models (run inside its venv).

  tf2onnx ARGS...                 tf2onnx's converter (opset 17), with numpy 2's removed
                                  `np.product` put back (tf2onnx 1.17 still calls it)
  patch-selfie IN.onnx OUT.onnx   replaces MediaPipe's custom transposed convolution
                                  (TFL_Convolution2DTransposeBias) by a standard ConvTranspose
  set-source MODEL.onnx TEXT      the graph's doc string names the package file it came from
                                  (instead of the converting machine's paths)
  fix-tfjs IN.json OUT.json       adds the `TArgs` attribute that tf2onnx's TF.js reader expects
                                  on fused nodes
  check MANIFEST.toml DIR         lists each converted file in DIR with its sha256
"""
import hashlib
import json
import runpy
import sys


def tf2onnx(args):
    import numpy as np

    if not hasattr(np, "product"):
        np.product = np.prod
    sys.argv = ["tf2onnx.convert", *args, "--opset", "17"]
    runpy.run_module("tf2onnx.convert", run_name="__main__")


def patch_selfie(src, dst):
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(src)
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    patched = 0
    for idx, node in enumerate(list(graph.node)):
        if node.op_type != "TFL_Convolution2DTransposeBias":
            continue
        x, w_name, b_name = node.input
        out = node.output[0]
        w = numpy_helper.to_array(inits[w_name])  # TFLite: [out, kh, kw, in]
        b = numpy_helper.to_array(inits[b_name])
        # ONNX ConvTranspose wants [in, out, kh, kw] and NCHW data around it.
        graph.initializer.append(
            numpy_helper.from_array(np.ascontiguousarray(w.transpose(3, 0, 1, 2)).astype(np.float32), w_name + "_iohw"))
        graph.initializer.append(numpy_helper.from_array(b.astype(np.float32), b_name + "_b"))
        nodes = [
            helper.make_node("Transpose", [x], [out + "_nchw_in"], perm=[0, 3, 1, 2]),
            helper.make_node("ConvTranspose", [out + "_nchw_in", w_name + "_iohw", b_name + "_b"], [out + "_nchw"],
                             strides=[2, 2], kernel_shape=[w.shape[1], w.shape[2]]),
            helper.make_node("Transpose", [out + "_nchw"], [out], perm=[0, 2, 3, 1]),
        ]
        graph.node.remove(node)
        for k, n in enumerate(nodes):
            graph.node.insert(idx + k, n)
        patched += 1
    if patched == 0:
        sys.exit(f"patch-selfie: {src} has no TFL_Convolution2DTransposeBias node")
    onnx.checker.check_model(model)
    onnx.save(model, dst)


def set_source(path, text):
    import onnx

    model = onnx.load(path)
    model.graph.doc_string = f"converted from {text}"
    onnx.save(model, path)


def fix_tfjs(src, dst):
    with open(src) as f:
        d = json.load(f)
    for n in d["modelTopology"]["node"]:
        if n["op"] in ("_FusedConv2D", "FusedDepthwiseConv2dNative", "_FusedMatMul"):
            a = n.setdefault("attr", {})
            count = int(a.get("num_args", {}).get("i", "0"))
            a.setdefault("TArgs", {"list": {"type": ["DT_FLOAT"] * count}})
    with open(dst, "w") as f:
        json.dump(d, f)


def check(manifest, folder):
    """Lists each converted file with its sha256 and whether it is byte for byte the pack's.
    The converter does not write the same bytes twice; `kissbooth models install --from`
    accepts a differing file when its conversion fingerprint (weights, operators, attributes)
    matches the manifest's, and refuses it otherwise."""
    import os
    import tomllib

    with open(manifest, "rb") as f:
        files = [e for e in tomllib.load(f)["file"] if e.get("convert")]
    for e in files:
        path = os.path.join(folder, e["file"])
        with open(path, "rb") as f:
            got = hashlib.sha256(f.read()).hexdigest()
        same = "the pack's bytes" if got == e["sha256"] else "other bytes: the installer checks its fingerprint"
        print(f"{e['file']} {got} ({same})")
    print(f"install them with: kissbooth models install --from {folder}")


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    {"tf2onnx": lambda: tf2onnx(args),
     "patch-selfie": lambda: patch_selfie(*args),
     "set-source": lambda: set_source(*args),
     "fix-tfjs": lambda: fix_tfjs(*args),
     "check": lambda: check(*args)}[cmd]()


if __name__ == "__main__":
    main()
