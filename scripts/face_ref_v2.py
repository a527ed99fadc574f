#!/usr/bin/env python3
"""Reference for face pack v2 (dense mesh, person segmentation, identity) in Python onnxruntime.

The yardstick for `kissbooth bench faces`: the same models and the same pre- and
post-processing as engines/src/face/{mesh,segment,identity,align}.rs, written plainly with numpy.
Faces (box and 68 landmarks) come from ../shared/reference/face_ref.py, imported as is.

Usage:  face_ref_v2.py [--models DIR] [--shared DIR] [--repeat N] IMAGE...
Prints one JSON object per image: per face the mesh (468 [x, y, z] in image pixels, z larger =
farther, mean 0), presence, mask coverage of the box and the identity embedding's first values;
and `ms` per stage (mesh per face, segment per frame, identity per face; medians over --repeat).
Needs: pip install onnxruntime numpy pillow
"""
import argparse, importlib.util, json, math, os, sys, time
import numpy as np
import onnxruntime as ort
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
MESH_SIZE = 192
MESH_SCALE = 1.6
# ArcFace 5-point template at 112x112: eye centres (image left, right), nose tip, mouth corners.
ARCFACE_112 = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                        [41.5493, 92.3655], [70.7299, 92.2041]], dtype=np.float32)


def load_face_ref(shared):
    path = os.path.join(shared, "reference", "face_ref.py")
    spec = importlib.util.spec_from_file_location("face_ref", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def bilinear(img, x, y):
    """Samples img (H, W, C float32) at array coordinates x, y (pixel centres at integers),
    zero outside the image."""
    h, w = img.shape[:2]
    x0 = np.floor(x).astype(np.int64)
    y0 = np.floor(y).astype(np.int64)
    fx = (x - x0)[..., None]
    fy = (y - y0)[..., None]
    out = np.zeros(x.shape + (img.shape[2],), dtype=np.float32)
    for dy, wy in ((0, 1 - fy), (1, fy)):
        for dx, wx in ((0, 1 - fx), (1, fx)):
            xi, yi = x0 + dx, y0 + dy
            ok = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
            v = np.zeros(x.shape + (img.shape[2],), dtype=np.float32)
            v[ok] = img[yi[ok], xi[ok]]
            out += v * wx * wy
    return out


def eye_centres(lm):
    return lm[36:42].mean(0), lm[42:48].mean(0)


def mesh_frame(box, lm):
    """The mesh crop: centre, side and angle (eyes level) in image pixels."""
    x1, y1, x2, y2 = box
    size = max(x2 - x1, y2 - y1) * MESH_SCALE
    el, er = eye_centres(lm)
    angle = math.atan2(er[1] - el[1], er[0] - el[0])
    return ((x1 + x2) / 2, (y1 + y2) / 2), size, angle


def mesh_crop(img, centre, size, angle):
    """The rotated square crop, k x k bilinear sub-samples averaged per pixel (source pixels at
    most 2 apart, k <= 4)."""
    k = min(max(math.ceil(size / MESH_SIZE / 2), 1), 4)
    n = MESH_SIZE * k
    c, s = math.cos(angle), math.sin(angle)
    t = ((np.arange(n, dtype=np.float32) + 0.5) / n - 0.5) * size
    gu, gv = np.meshgrid(t, t)  # gu along the crop's x, gv along its y
    X = centre[0] + gu * c - gv * s
    Y = centre[1] + gu * s + gv * c
    return bilinear(img, X - 0.5, Y - 0.5).reshape(MESH_SIZE, k, MESH_SIZE, k, 3).mean((1, 3))


class RefV2:
    def __init__(self, models, threads=2):
        ort.set_default_logger_severity(3)
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.add_session_config_entry("session.set_denormal_as_zero", "1")
        cpu = ["CPUExecutionProvider"]
        opn = lambda f: ort.InferenceSession(os.path.join(models, f), so, providers=cpu)
        self.mesh = opn("face-mesh-468.onnx")
        self.seg = opn("selfie-segmentation-256.onnx")
        land = os.path.join(models, "selfie-segmentation-144x256.onnx")
        self.seg_land = opn("selfie-segmentation-144x256.onnx") if os.path.isfile(land) else None
        self.ident = None
        for name, size, inp, out in (("faceres", 224, "input_1:0", "global_pooling/Mean"),
                                     ("mobileface", 112, "data:0", "batchnorm0/add_1:0")):
            f = f"face-identity-{name}.onnx"
            if os.path.isfile(os.path.join(models, f)):
                self.ident = (name, opn(f), size, inp, out)
                break

    def run_mesh(self, img, box, lm):
        centre, size, angle = mesh_frame(box, lm)
        x = mesh_crop(img, centre, size, angle) / 255.0
        pts, flag = self.mesh.run(["conv2d_21", "conv2d_31"], {"input_1": x[None]})
        p = pts.reshape(468, 3).astype(np.float64)
        k = size / MESH_SIZE
        u = (p[:, 0] / MESH_SIZE - 0.5) * size
        v = (p[:, 1] / MESH_SIZE - 0.5) * size
        c, s = math.cos(angle), math.sin(angle)
        xs = centre[0] + u * c - v * s
        ys = centre[1] + u * s + v * c
        z = p[:, 2] * k
        z = z - z.mean()
        presence = 1 / (1 + math.exp(-float(flag.reshape(-1)[0])))
        return np.stack([xs, ys, z], 1), presence

    def run_segment(self, pil, gray):
        w, h = pil.size
        sess = self.seg_land if (w > h and self.seg_land is not None) else self.seg
        _, mh, mw, _ = sess.get_inputs()[0].shape
        x = np.asarray(pil.resize((mw, mh), Image.BILINEAR), dtype=np.float32) / 255.0
        prob = sess.run(None, {"input_1": x[None]})[0][0, :, :, 0]
        # bilinear upsample to the image (pixel centres aligned), then the guided filter
        up = upsample(prob, w, h, mw / w, mh / h)
        r = max(1, (max(w, h) + 50) // 100)
        q = np.clip(fast_guided_filter(gray, up, r, 1e-3), 0.0, 1.0)
        # where the model is sure of a person, the mask stays at least that sure
        return np.maximum(q, np.clip((up - 0.95) / 0.05, 0.0, 1.0) * up)

    def run_identity(self, img, lm):
        _, sess, size, inp, out = self.ident
        crop = align_arcface(img, lm, size)
        e = sess.run([out], {inp: crop[None]})[0][0]
        return e


def upsample(a, w, h, fx, fy):
    """Bilinear: destination pixel i reads source coordinate (i + 0.5) * f - 0.5, clamped."""
    sh, sw = a.shape
    xs = np.clip((np.arange(w, dtype=np.float32) + 0.5) * fx - 0.5, 0, sw - 1)
    ys = np.clip((np.arange(h, dtype=np.float32) + 0.5) * fy - 0.5, 0, sh - 1)
    X, Y = np.meshgrid(xs, ys)
    return bilinear(a[:, :, None], X, Y)[:, :, 0]


def block_mean(a, s):
    """Means of s x s blocks, the last ones clipped to the image."""
    h, w = a.shape
    ys, xs = np.arange(0, h, s), np.arange(0, w, s)
    sums = np.add.reduceat(np.add.reduceat(a.astype(np.float64), ys, axis=0), xs, axis=1)
    cy, cx = np.minimum(ys + s, h) - ys, np.minimum(xs + s, w) - xs
    return (sums / (cy[:, None] * cx[None, :])).astype(np.float32)


def fast_guided_filter(I, p, r, eps):
    """The guided filter's coefficients on s x s block means (s = longer side // 512), applied
    to the full-resolution guide (He and Sun, 2015)."""
    h, w = I.shape
    s = max(1, max(w, h) // 512)
    if s == 1:
        return guided_filter(I, p, r, eps)
    a, b = coefficients(block_mean(I, s), block_mean(p, s), max(1, (r + s // 2) // s), eps)
    return upsample(a, w, h, 1 / s, 1 / s) * I + upsample(b, w, h, 1 / s, 1 / s)


def box_mean(a, r):
    """Mean over a (2r+1)^2 window clipped to the image."""
    def along(a, axis):
        c = np.cumsum(a, axis=axis, dtype=np.float64)
        c = np.concatenate([np.zeros_like(np.take(c, [0], axis=axis)), c], axis=axis)
        n = a.shape[axis]
        i = np.arange(n)
        hi = np.minimum(i + r + 1, n)
        lo = np.maximum(i - r, 0)
        return (np.take(c, hi, axis=axis) - np.take(c, lo, axis=axis)), (hi - lo)
    s, cx = along(a, 1)
    s, cy = along(s, 0)
    return (s / (cy[:, None] * cx[None, :])).astype(np.float32)


def coefficients(I, p, r, eps):
    mI, mp = box_mean(I, r), box_mean(p, r)
    cov = box_mean(I * p, r) - mI * mp
    var = box_mean(I * I, r) - mI * mI
    a = cov / (var + eps)
    b = mp - a * mI
    return box_mean(a, r), box_mean(b, r)


def guided_filter(I, p, r, eps):
    a, b = coefficients(I, p, r, eps)
    return a * I + b


def similarity(src, dst):
    ms, md = src.mean(0), dst.mean(0)
    s, d = src - ms, dst - md
    den = (s ** 2).sum()
    a = (s[:, 0] * d[:, 0] + s[:, 1] * d[:, 1]).sum() / den
    b = (s[:, 0] * d[:, 1] - s[:, 1] * d[:, 0]).sum() / den
    tx = md[0] - (a * ms[0] - b * ms[1])
    ty = md[1] - (b * ms[0] + a * ms[1])
    return a, b, tx, ty


def arcface_points(lm):
    el, er = eye_centres(lm)
    return np.array([el, er, lm[30], lm[48], lm[54]], dtype=np.float32)


def align_arcface(img, lm, size):
    """The face aligned to the ArcFace template at size x size, k x k bilinear sub-samples
    averaged per pixel as for the mesh crop (pixel centres at integers on both sides)."""
    a, b, tx, ty = similarity(arcface_points(lm), ARCFACE_112 * (size / 112.0))
    r = 1.0 / (a * a + b * b)
    k = min(max(math.ceil(math.sqrt(r) / 2), 1), 4)
    o = (np.arange(size * k, dtype=np.float32) + 0.5) / k - 0.5
    ox, oy = np.meshgrid(o, o)
    dx, dy = ox - tx, oy - ty
    sx = (a * dx + b * dy) * r
    sy = (-b * dx + a * dy) * r
    return bilinear(img, sx, sy).reshape(size, k, size, k, 3).mean((1, 3))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default=os.path.join(HERE, "..", "..", "shared", "models"))
    ap.add_argument("--shared", default=os.path.join(HERE, "..", "..", "shared"))
    ap.add_argument("--repeat", type=int, default=1, help="run each stage N times; timings are medians")
    ap.add_argument("--full", action="store_true", help="print the whole mesh and embedding")
    ap.add_argument("images", nargs="+")
    a = ap.parse_args()
    face_ref = load_face_ref(a.shared)
    det = face_ref.Reference(a.models)
    ref = RefV2(a.models)
    for path in a.images:
        pil = Image.open(path).convert("RGB")
        img = np.asarray(pil, dtype=np.float32)
        gray = (img @ np.array([0.299, 0.587, 0.114], dtype=np.float32)) / 255.0
        boxes, scores = det.detect(pil)
        faces = [(b, det.landmarks(pil, b)) for b in boxes]
        faces.sort(key=lambda f: f[0][0] + f[0][2])
        times = {"mesh": [], "segment": [], "identity": []}
        for _ in range(max(1, a.repeat)):
            t = time.perf_counter()
            meshes = [ref.run_mesh(img, b, lm) for b, lm in faces]
            times["mesh"].append((time.perf_counter() - t) / max(1, len(faces)))
            t = time.perf_counter()
            mask = ref.run_segment(pil, gray)
            times["segment"].append(time.perf_counter() - t)
            if ref.ident is not None:
                t = time.perf_counter()
                embs = [ref.run_identity(img, lm) for _, lm in faces]
                times["identity"].append((time.perf_counter() - t) / max(1, len(faces)))
        out_faces = []
        for (b, lm), (mesh, presence) in zip(faces, meshes):
            x1, y1, x2, y2 = [int(round(v)) for v in b]
            cov = float(mask[max(y1, 0):max(y2, 0), max(x1, 0):max(x2, 0)].mean())
            f = {"box": [round(float(v), 2) for v in b],
                 "landmarks": [[round(float(x), 2), round(float(y), 2)] for x, y in lm],
                 "presence": round(presence, 4),
                 "mask_coverage": round(cov, 4),
                 "mesh": [[round(float(v), 2) for v in p] for p in (mesh if a.full else mesh[:3])]}
            out_faces.append(f)
        if ref.ident is not None:
            for f, e in zip(out_faces, embs):
                f["embedding"] = [round(float(v), 5) for v in (e if a.full else e[:4])]
        ms = {k: round(float(np.median(v)) * 1e3, 2) for k, v in times.items() if v}
        print(json.dumps({"image": os.path.basename(path), "width": pil.size[0], "height": pil.size[1],
                          "identity_model": ref.ident[0] if ref.ident else None, "faces": out_faces, "ms": ms}))


if __name__ == "__main__":
    sys.exit(main())
