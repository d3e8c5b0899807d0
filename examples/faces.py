"""Synthetic faces for the examples: landmark shapes from a small shape model, and images.

No data set is needed: a plausible mean face in the 300-W (68 points) or WFLW (98 points)
layout is built from arcs and ellipses, deformed along a few hand-made modes (mouth opening,
smile, eye opening, brow raise, face width, jaw length) and put in the image with a random
pose (rotation, scale, shift, a yaw-like squeeze). The image the network sees has three
channels, each the sum of Gaussian blobs of one group of landmarks plus noise, so that the
network has to learn which blob is which landmark. Everything is drawn from a torch.Generator
seeded by (seed, step): the same global batch on every process, whatever the world size.
"""

import math

import torch

# Landmark indices of each facial part, per layout (0-based; the order of the public data
# sets, so that lk.metrics' "300w68" / "wflw98" eye corners are the right points).
PARTS = {
    68: dict(contour=range(0, 17), brow_r=range(17, 22), brow_l=range(22, 27),
             nose_bridge=range(27, 31), nose_base=range(31, 36), eye_r=range(36, 42),
             eye_l=range(42, 48), mouth_outer=range(48, 60), mouth_inner=range(60, 68)),
    98: dict(contour=range(0, 33), brow_r=range(33, 42), brow_l=range(42, 51),
             nose_bridge=range(51, 55), nose_base=range(55, 60), eye_r=range(60, 68),
             eye_l=range(68, 76), mouth_outer=range(76, 88), mouth_inner=range(88, 96),
             pupils=range(96, 98)),
}
LAYOUT_NAMES = {68: "300w68", 98: "wflw98"}  # lk.metrics layouts
# Image channel of each part: 0 the outline, 1 eyes and brows, 2 nose and mouth.
_CHANNEL = dict(contour=0, brow_r=1, brow_l=1, eye_r=1, eye_l=1, pupils=1, nose_bridge=2,
                nose_base=2, mouth_outer=2, mouth_inner=2)


def _arc(n, cx, cy, rx, ry, start, stop):
    """n points on the ellipse arc (cx + rx·cos t, cy + ry·sin t), t from start to stop (y is
    down, as in images)."""
    t = torch.linspace(start, stop, n, dtype=torch.float64)
    return torch.stack((cx + rx * torch.cos(t), cy + ry * torch.sin(t)), dim=-1)


def _eye(n, cx):
    """n points around an eye, clockwise in the image from its leftmost corner (300-W and
    WFLW: the outer corner of the image's left eye, the inner corner of the right one)."""
    return _arc(n + 1, cx, -0.22, 0.13, 0.055, math.pi, 3 * math.pi)[:-1]


def mean_shape(num_landmarks):
    """A mean face (N,2), N = 68 or 98, in units of half the face width, centred at 0."""
    if num_landmarks not in PARTS:
        raise ValueError(f"num_landmarks must be 68 or 98, got {num_landmarks}")
    p = {name: len(idx) for name, idx in PARTS[num_landmarks].items()}
    brow = p["brow_r"] // 2 + 1 if num_landmarks == 98 else p["brow_r"]
    pieces = [
        _arc(p["contour"], 0.0, -0.15, 0.95, 1.1, math.pi + 0.15, -0.15),  # ear to ear, by chin
        _arc(brow, -0.38, -0.42, 0.22, 0.1, math.pi, 2 * math.pi),          # right brow, upper
    ]
    if num_landmarks == 98:  # WFLW brows: 5 upper points, then 4 lower ones back
        pieces.append(_arc(6, -0.38, -0.40, 0.22, 0.06, 2 * math.pi, math.pi)[1:-1])
    pieces.append(_arc(brow, 0.38, -0.42, 0.22, 0.1, math.pi, 2 * math.pi))  # left brow
    if num_landmarks == 98:
        pieces.append(_arc(6, 0.38, -0.40, 0.22, 0.06, 2 * math.pi, math.pi)[1:-1])
    bridge = torch.linspace(-0.2, 0.1, p["nose_bridge"], dtype=torch.float64)
    pieces += [torch.stack((torch.zeros_like(bridge), bridge), dim=-1),
               _arc(p["nose_base"], 0.0, 0.08, 0.16, 0.08, math.pi * 0.9, math.pi * 0.1),
               _eye(p["eye_r"], -0.38), _eye(p["eye_l"], 0.38),
               _arc(p["mouth_outer"] + 1, 0.0, 0.45, 0.32, 0.14, math.pi,
                    3 * math.pi)[:-1],
               _arc(p["mouth_inner"] + 1, 0.0, 0.45, 0.22, 0.06, math.pi, 3 * math.pi)[:-1]]
    if num_landmarks == 98:
        pieces.append(torch.tensor([[-0.38, -0.22], [0.38, -0.22]], dtype=torch.float64))
    shape = torch.cat(pieces)
    assert shape.shape == (num_landmarks, 2)
    return shape


def _modes(num_landmarks):
    """Deformation modes (M,N,2) of the shape model: how each part moves per unit coefficient."""
    base = mean_shape(num_landmarks)
    parts = PARTS[num_landmarks]
    modes = []

    def mode(fn):
        m = torch.zeros_like(base)
        fn(m)
        modes.append(m)

    def mouth_open(m):
        for name in ("mouth_outer", "mouth_inner"):
            idx = list(parts[name])
            m[idx, 1] = (base[idx, 1] - 0.45) * 1.5
    mode(mouth_open)

    def smile(m):
        for name in ("mouth_outer", "mouth_inner"):
            idx = list(parts[name])
            m[idx, 0] = base[idx, 0] * 0.4
            m[idx, 1] = -base[idx, 0].abs() * 0.3
    mode(smile)

    def eyes_open(m):
        for name in ("eye_r", "eye_l"):
            idx = list(parts[name])
            m[idx, 1] = (base[idx, 1] + 0.22) * 0.8
    mode(eyes_open)

    def brows_up(m):
        for name in ("brow_r", "brow_l"):
            m[list(parts[name]), 1] = -0.1
    mode(brows_up)
    mode(lambda m: m.__setitem__((Ellipsis, 0), base[:, 0] * 0.15))   # face width
    mode(lambda m: m.__setitem__((list(parts["contour"]), 1),         # jaw length
                                 (base[list(parts["contour"]), 1] + 0.15).clamp(min=0) * 0.2))
    return torch.stack(modes)


def sample_shapes(generator, batch, num_landmarks, size):
    """Landmark shapes (batch,N,2) in pixels of a size×size image: mean + Σ c_m·mode_m
    (c_m ~ N(0,1)), then a random pose: rotation ±15°, scale ±10%, shift ±6% of size, and a
    yaw-like squeeze of one side of the face."""
    modes = _modes(num_landmarks)
    coeff = torch.randn(batch, modes.shape[0], generator=generator, dtype=torch.float64)
    shapes = mean_shape(num_landmarks) + torch.einsum("bm,mnd->bnd", coeff, modes)
    # Yaw: the half of the face turned away shrinks horizontally.
    yaw = (torch.rand(batch, 1, generator=generator, dtype=torch.float64) - 0.5) * 0.5
    x = shapes[..., 0]
    shapes = torch.stack((torch.where(x * yaw > 0, x * (1 - yaw.abs()), x) + yaw * 0.3,
                          shapes[..., 1]), dim=-1)
    angle = (torch.rand(batch, generator=generator, dtype=torch.float64) - 0.5) * math.radians(30)
    scale = 1 + (torch.rand(batch, generator=generator, dtype=torch.float64) - 0.5) * 0.2
    cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
    rotation = torch.stack((torch.stack((cos, -sin), -1), torch.stack((sin, cos), -1)), -2)
    shift = (torch.rand(batch, 1, 2, generator=generator, dtype=torch.float64) - 0.5) * 0.12
    # The face (about 2.2 units tall) fills ~70% of the image.
    unit = 0.32 * size
    return (shapes @ rotation.transpose(1, 2) + shift * size / unit) * unit + (size - 1) / 2


def render_images(shapes, size, *, noise=0.05, generator=None, sigma=1.0):
    """Images (B,3,size,size) of shapes (B,N,2) in pixels: per part group, the sum of Gaussian
    blobs of its landmarks (render_gaussian_heatmaps' pixel convention), plus Gaussian noise."""
    import landmark_kernels as lk

    num_landmarks = shapes.shape[1]
    blobs = lk.render_gaussian_heatmaps(shapes.float(), size, size, sigma)  # (B,N,H,W)
    channel = torch.zeros(num_landmarks, dtype=torch.long)
    for name, idx in PARTS[num_landmarks].items():
        channel[list(idx)] = _CHANNEL[name]
    images = torch.zeros(shapes.shape[0], 3, size, size)
    images.index_add_(1, channel, blobs)
    images = images.clamp(max=1.0)
    if noise:
        images += noise * torch.randn(images.shape, generator=generator)
    return images


def global_batch(seed, step, batch, num_landmarks, size):
    """The step's whole batch (images (B,3,size,size) fp32, shapes (B,N,2) fp64 in image
    pixels), the same on every process: drawn from a generator seeded by (seed, step)."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + step)
    shapes = sample_shapes(generator, batch, num_landmarks, size)
    return render_images(shapes, size, generator=generator), shapes
