"""Pictures and animations of convolution, pooling and their gradients, with the real numbers.

    from tinygrad_edu.teach.pictures import animate
    animate("conv2d", input=(1, 1, 5, 5), weight=(1, 1, 3, 3), view="input-grad").save("dx.gif")

Every number drawn is computed by tinygrad_edu's own ops (F.conv2d, F.conv_transpose2d, the pools,
.backward()) in the code that feeds the drawing, and kept in `Animation.arrays`, so a picture
cannot disagree with the code, and the tests compare the drawn numbers with the VJP.

Views of conv2d: "forward", "input-grad", "weight-grad", "modes", "channels"; the pools
("max_pool2d", "avg_pool2d") have one picture, the forward value and where each window's gradient
goes. Image 0 is drawn; for several channels, output channel 0 and the input channels of its group.

Frames: one per output cell (forward), one per delta cell then one per input cell (input-grad),
one per kernel tap (weight-grad), one per pooling window. A phase with more than MAX_CELL_FRAMES
cells (e.g. a 28x28 input: 576 output cells) gets one frame per row instead, the window standing at
the row's last cell. Grids up to NUMBERS_UP_TO cells a side show their numbers; larger ones colour
only (orange > 0, blue < 0, white 0; grey is padding).

Frames are drawn with Pillow (fonts: matplotlib's DejaVu Sans), not a matplotlib figure per frame:
a millisecond or two a frame, so a 28x28 input animates in well under a second.

    python -m tinygrad_edu.teach.pictures --docs docs/img    regenerates the tutorial's pictures
                                                            and docs/img/numbers.json
"""
import base64
import io
import json
from pathlib import Path

import numpy as np

from .. import functional as F
from ..engine import Tensor
from ..kernels.conv import dilate, flip_transpose, pad

__all__ = ["animate", "Animation", "VIEWS", "docs_numbers", "write_docs_pictures"]

VIEWS = {"conv2d": ("forward", "input-grad", "weight-grad", "modes", "channels"),
         "max_pool2d": ("forward", "input-grad"), "avg_pool2d": ("forward", "input-grad")}
MAX_CELL_FRAMES = 64     # more cells than this in a phase: one frame per row
NUMBERS_UP_TO = 12       # grids up to 12 cells a side show numbers (an 8x8 input padded by 2)

WHITE, INK, GRID, PAD = (255, 255, 255), (25, 25, 25), (160, 160, 160), (222, 222, 222)
RED, GREEN, ORANGE, BLUE = (214, 39, 40), (30, 140, 50), (240, 140, 0), (40, 90, 200)
_POS, _NEG = np.array([236, 112, 36.0]), np.array([52, 118, 214.0])


# ================================================================================================
# The Animation: frames (PIL images), the numbers they show, and three ways to save them
# ================================================================================================
class Animation:
    """Frames (PIL images, drawn on first use) and `.arrays`, every number they show, by name.

    save("x.gif") an animation, save("x.png") all frames on one sheet, save("x.html") a player
    that needs no network (frames embedded; prev / play / next buttons, arrow keys, `#frame=N`).
    In Jupyter the object shows itself as that player."""

    def __init__(self, title, arrays, draw, duration=800, last_duration=2500):
        self.title, self.arrays = title, arrays
        self._draw, self._frames = draw, None
        self.duration, self.last_duration = duration, last_duration

    @property
    def frames(self):
        if self._frames is None:
            frames = list(self._draw())
            if len(frames) == 1:
                frames = [_trim(frames[0])]
            if len(frames) > 1:   # a frame counter: also keeps Pillow from merging equal frames
                for i, im in enumerate(frames):
                    _Canvas.on(im).text((im.width - 6, im.height - 4), f"{i + 1}/{len(frames)}", 11,
                                        GRID, anchor="rd")
            self._frames = frames
        return self._frames

    def __len__(self):
        return len(self.frames)

    def __repr__(self):
        return f"<Animation {self.title!r}: {len(self.frames)} frames; .save('x.gif' | 'x.png' | 'x.html')>"

    def save(self, path):
        """Write a .gif (animation), a .png (all frames on one sheet) or an .html player."""
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix not in (".gif", ".png", ".html"):
            raise ValueError(f"animate: the output file must end in .gif, .png or .html, got {str(path)!r}")
        if suffix == ".gif":
            from PIL import Image

            # a fast octree palette per frame (Pillow's default median cut is several times slower)
            frames = [f.quantize(colors=128, method=Image.Quantize.FASTOCTREE) for f in self.frames]
            durations = [self.duration] * (len(frames) - 1) + [self.last_duration]
            frames[0].save(path, save_all=True, append_images=frames[1:], duration=durations, loop=0)
        elif suffix == ".png":
            self.sheet().save(path)
        else:
            path.write_text(self.to_html(), encoding="utf-8")
        return path

    def sheet(self, max_width=2400):
        """All frames on one image, left to right and top to bottom, numbered."""
        frames = self.frames
        if len(frames) == 1:
            return frames[0]
        fw, fh = max(f.width for f in frames), max(f.height for f in frames)
        columns = max(1, min(len(frames), int(np.ceil(np.sqrt(len(frames) * fh / fw)))))
        scale = min(1.0, max_width / (columns * fw))
        tw, th = int(fw * scale), int(fh * scale)
        rows = -(-len(frames) // columns)
        sheet = _Canvas(columns * (tw + 8) + 8, rows * (th + 8) + 8)
        for i, f in enumerate(frames):
            x, y = 8 + (i % columns) * (tw + 8), 8 + (i // columns) * (th + 8)
            sheet.im.paste(f.resize((int(f.width * scale), int(f.height * scale))), (x, y))
            sheet.d.rectangle((x - 1, y - 1, x + tw, y + th), outline=GRID)
        return sheet.im

    def to_html(self, standalone=True):
        """A player: frames as base64 PNGs in the page itself; buttons, arrow keys, space to play."""
        pngs = []
        for f in self.frames:
            buf = io.BytesIO()
            f.save(buf, format="PNG", compress_level=6)
            pngs.append("data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii"))
        uid = "tge" + base64.b32encode(np.random.default_rng().bytes(5)).decode("ascii").lower()
        title = _html_escape(self.title)
        body = _PLAYER.replace("UID", uid).replace("FRAMES", json.dumps(pngs)).replace("TITLE", title) \
            .replace("DURATION", str(self.duration)).replace("STANDALONE", "true" if standalone else "false")
        if not standalone:
            return body
        return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title></head>\n'
                f'<body style="font-family: sans-serif">\n{body}\n</body></html>\n')

    def _repr_html_(self):
        return self.to_html(standalone=False)


def _trim(im, margin=12):
    """Cut the white space at the right and the bottom of a still."""
    a = np.asarray(im.convert("L")) < 250
    rows, cols = np.nonzero(a.any(1))[0], np.nonzero(a.any(0))[0]
    if not rows.size:
        return im
    return im.crop((0, 0, min(im.width, cols[-1] + margin), min(im.height, rows[-1] + margin)))


def _html_escape(text):
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


_PLAYER = """<div id="UID" class="tge-player" tabindex="0" style="outline: none; display: inline-block">
<div style="font-weight: bold; margin: 4px 0">TITLE</div>
<img id="UID-img" alt="frame" style="display: block; max-width: 100%">
<div style="margin: 6px 0">
<button id="UID-prev" type="button" title="previous frame (left arrow)">&#9664; prev</button>
<button id="UID-play" type="button" title="play / pause (space)">&#9654; play</button>
<button id="UID-next" type="button" title="next frame (right arrow)">next &#9654;</button>
<span id="UID-counter" style="margin-left: 8px; font-family: monospace"></span>
<span style="margin-left: 8px; color: #888">arrow keys step, space plays</span>
</div></div>
<script>
(function () {
  var frames = FRAMES, n = frames.length, i = 0, timer = null, standalone = STANDALONE;
  var root = document.getElementById("UID"), img = document.getElementById("UID-img");
  var counter = document.getElementById("UID-counter"), play = document.getElementById("UID-play");
  function show(k) { i = ((k % n) + n) % n; img.src = frames[i]; counter.textContent = (i + 1) + " / " + n;
                     root.setAttribute("data-frame", String(i + 1)); }
  function stop() { if (timer) { clearInterval(timer); timer = null; play.innerHTML = "&#9654; play"; } }
  function toggle() { if (timer) { stop(); return; }
    if (i === n - 1) { show(0); }
    play.innerHTML = "&#10074;&#10074; pause";
    timer = setInterval(function () { if (i === n - 1) { stop(); } else { show(i + 1); } }, DURATION); }
  document.getElementById("UID-prev").onclick = function () { stop(); show(i - 1); };
  document.getElementById("UID-next").onclick = function () { stop(); show(i + 1); };
  play.onclick = toggle;
  function key(e) {
    if (e.key === "ArrowRight") { stop(); show(i + 1); } else if (e.key === "ArrowLeft") { stop(); show(i - 1); }
    else if (e.key === "Home") { stop(); show(0); } else if (e.key === "End") { stop(); show(n - 1); }
    else if (e.key === " ") { toggle(); } else { return; }
    e.preventDefault();
  }
  (standalone ? document : root).addEventListener("keydown", key);
  var m = standalone && /frame=(\\d+)/.exec(window.location.hash);
  show(m ? parseInt(m[1], 10) - 1 : 0);
  if (standalone) { root.focus(); }
})();
</script>"""


# ================================================================================================
# Drawing: grids of numbered, coloured cells on a Pillow image
# ================================================================================================
_FONTS = {}


def _font(size, bold=False):
    from PIL import ImageFont

    key = (size, bold)
    if key not in _FONTS:
        import matplotlib   # only for the path of its bundled DejaVu fonts
        name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
        try:
            _FONTS[key] = ImageFont.truetype(str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / name), size)
        except OSError:
            _FONTS[key] = ImageFont.load_default()
    return _FONTS[key]


def _num(v):
    if np.isnan(v):
        return ""
    if np.isinf(v):
        return "-\u221e" if v < 0 else "\u221e"
    if abs(v - round(v)) < 1e-9:
        return str(int(round(v))).replace("-", "\u2212")
    return f"{v:.2f}".rstrip("0").replace("-", "\u2212")


def _par(v):
    return f"({_num(v)})" if v < 0 else _num(v)


class _Canvas:
    def __init__(self, width, height):
        from PIL import Image, ImageDraw

        self.im = Image.new("RGB", (int(width), int(height)), WHITE)
        self.d = ImageDraw.Draw(self.im)

    @classmethod
    def on(cls, im):
        from PIL import ImageDraw

        c = cls.__new__(cls)
        c.im, c.d = im, ImageDraw.Draw(im)
        return c

    def text(self, xy, s, size=14, fill=INK, anchor="la", bold=False):
        self.d.text(xy, s, font=_font(size, bold), fill=fill, anchor=anchor)

    def lines(self, x, y, texts, size=14, fill=INK, gap=4):
        for t in texts:
            self.text((x, y), t, size, fill)
            y += size + gap
        return y


def _cell_size(*arrays, numbers=True, size=13):
    if not numbers:
        return None
    longest = max((len(_num(v)) for a in arrays for v in np.asarray(a, float).ravel()), default=1)
    return max(24, int(_font(size).getlength("8" * longest)) + 10)


class _Grid:
    """Where an array's cells are on a canvas; draws the array and outlines cells."""

    def __init__(self, x, y, shape, cell):
        self.x, self.y, self.rows, self.cols, self.cell = int(x), int(y), shape[0], shape[1], int(cell)
        self.w, self.h = self.cols * self.cell, self.rows * self.cell

    def box(self, r, c, nr=1, nc=1):
        return (self.x + c * self.cell, self.y + r * self.cell,
                self.x + (c + nc) * self.cell, self.y + (r + nr) * self.cell)

    def outline(self, cv, r, c, nr=1, nc=1, colour=RED, width=3):
        x0, y0, x1, y1 = self.box(r, c, nr, nc)
        cv.d.rectangle((x0 - 1, y0 - 1, x1, y1), outline=colour, width=width)

    def draw(self, cv, values, *, vmax=None, numbers=None, grey=None, title=None, labels=None, size=None,
             bold=None):
        v = np.asarray(values, float).reshape(self.rows, self.cols)
        if numbers is None:
            numbers = max(self.rows, self.cols) <= NUMBERS_UP_TO
        finite = np.abs(v[np.isfinite(v)])
        vmax = vmax or (finite.max() if finite.size and finite.max() > 0 else 1.0)
        t = np.clip(np.abs(np.where(np.isfinite(v), v, 0)) / vmax, 0, 1) * (0.55 if numbers else 0.95)
        base = np.where((v > 0)[..., None], _POS, _NEG)
        rgb = 255 + (base - 255) * t[..., None]
        rgb[np.isnan(v)] = 255
        if grey is not None:
            rgb[grey] = 0.5 * rgb[grey] + 0.5 * np.array(PAD) - 12
        rgb[np.isinf(v)] = PAD
        block = np.repeat(np.repeat(rgb.astype(np.uint8), self.cell, 0), self.cell, 1)
        if self.cell >= 5:
            block[::self.cell, :] = GRID
            block[:, ::self.cell] = GRID
        from PIL import Image

        cv.im.paste(Image.fromarray(block), (self.x, self.y))
        cv.d.rectangle((self.x, self.y, self.x + self.w, self.y + self.h), outline=GRID)
        if numbers:
            size = size or max(9, min(14, int(self.cell * 0.42)))
            for r in range(self.rows):
                for c in range(self.cols):
                    s = labels[r][c] if labels is not None else _num(v[r, c])
                    if s:
                        x0, y0, x1, y1 = self.box(r, c)
                        cv.text(((x0 + x1) / 2 + 1, (y0 + y1) / 2 + 1), s, size,
                                INK if grey is None or not grey[r, c] else (110, 110, 110), anchor="mm",
                                bold=bool(bold is not None and bold[r, c]))
        if title:
            cv.text((self.x, self.y - 5), title, 13, anchor="ld")
        return self


def _grid(cv, x, y, values, cell, **kw):
    values = np.asarray(values, float)
    return _Grid(x, y, values.shape, cell).draw(cv, values, **kw)


def _auto_cell(side, numbers, *arrays, target=300):
    """Numbers: wide enough for the longest; colour only: fit `side` cells into about `target` pixels."""
    c = _cell_size(*arrays, numbers=numbers)
    return c if c else max(4, min(22, target // max(side, 1)))


def _frames_for(rows, cols):
    """Cells (r, c) a phase draws: all, or the last cell of each row when there are too many."""
    if rows * cols <= MAX_CELL_FRAMES:
        return [(r, c) for r in range(rows) for c in range(cols)]
    return [(r, cols - 1) for r in range(rows)]


def _filled(values, upto, order):
    """`values` with the cells after `upto` (in `order`) blanked (NaN): the output filling up."""
    out = np.full(values.shape, np.nan)
    r, c = upto
    flat = r * values.shape[1] + c
    keep = np.arange(values.size).reshape(values.shape) <= flat
    out[keep] = values[keep]
    return out


# ================================================================================================
# The numbers: one conv2d, forward and backward, by tinygrad_edu's own ops
# ================================================================================================
def _values(spec, what, rng, choices):
    """An array from a shape (random small integers, so the sums read by hand) or from data."""
    if isinstance(spec, Tensor):
        return np.array(spec.numpy(), dtype=np.float64)
    if isinstance(spec, np.ndarray) or (isinstance(spec, (list, tuple)) and spec and
                                        isinstance(spec[0], (list, tuple, np.ndarray))):
        return np.array(spec, dtype=np.float64)
    if isinstance(spec, str):
        spec = [v for v in spec.replace("x", ",").split(",") if v.strip()]
    try:
        shape = tuple(int(v) for v in spec)
    except (TypeError, ValueError):
        raise TypeError(f"animate: {what} must be a shape such as (1, 1, 6, 6) or an array, got {spec!r}") from None
    if len(shape) != 4 or min(shape) < 1:
        raise ValueError(f"animate: {what} must be a 4-D shape of positive sizes (N, C, H, W), got {shape}")
    return rng.choice(np.array(choices, dtype=np.float64), size=shape)


class _Conv:
    """x, W, y = F.conv2d(x, W), a delta, and the gradients .backward() gives; plus the two ways to
    the input gradient (scatter: stamps; gather: a correlation), each by the framework's ops."""

    def __init__(self, input, weight, stride=1, padding=0, dilation=1, groups=1, delta=None, rng=0):
        rng = np.random.default_rng(rng)
        x = _values(input, "input", rng, [-2, -1, 0, 1, 2, 3])
        w = _values(weight, "weight", rng, [-2, -1, 0, 1, 2])
        xt, wt = Tensor(x, requires_grad=True), Tensor(w, requires_grad=True)
        y = F.conv2d(xt, wt, stride=stride, padding=padding, dilation=dilation, groups=groups)  # checks all
        d = _values(y.shape if delta is None else delta, "delta", rng, [-2, -1, 1, 2, 3])
        if d.shape != y.shape:
            raise ValueError(f"animate: delta must have the output's shape {y.shape}, got {d.shape}")
        y.backward(Tensor(d))
        self.x, self.w, self.y, self.delta = x, w, y.numpy(), d
        self.dx, self.dw = xt.grad.numpy(), wt.grad.numpy()
        self.stride = F.pair(stride, "conv2d", "stride", 1)
        self.dilation = F.pair(dilation, "conv2d", "dilation", 1)
        self.groups, self.padding_arg = groups, padding
        self.pads = F.conv_padding(padding, w.shape[2:], self.stride, self.dilation, "conv2d")
        self.x_pad = pad(x, self.pads)
        self.k = w.shape[2:]
        self.out = y.shape[2:]
        # how many rows/columns at the bottom/right of the padded input no window reaches
        self.rest = tuple(self.x_pad.shape[2 + i] - ((self.out[i] - 1) * self.stride[i]
                                                     + self.dilation[i] * (self.k[i] - 1) + 1) for i in (0, 1))

    def arrays(self):
        return {"input": self.x, "weight": self.w, "output": self.y, "delta": self.delta,
                "input_grad": self.dx, "weight_grad": self.dw}

    def stamps(self):
        """Scatter: the stamp of each delta cell of image 0 on the padded input, (Ho*Wo, C_in, Hp, Wp):
        F.conv_transpose2d of a delta that is zero except at that cell (all output channels)."""
        Ho, Wo = self.out
        one_hot = np.zeros((Ho * Wo,) + self.delta.shape[1:])
        cells = np.arange(Ho * Wo)
        one_hot[cells, :, cells // Wo, cells % Wo] = self.delta[0].reshape(-1, Ho * Wo).T
        return F.conv_transpose2d(Tensor(one_hot), Tensor(self.w), stride=self.stride, dilation=self.dilation,
                                  groups=self.groups, output_padding=self.rest).numpy()

    def gather_parts(self):
        """Gather: delta of image 0 dilated by the stride, padded by d(k-1)-p (full, minus the
        forward's padding; negative crops) plus the unread remainder at the end, and W with
        its channel axes swapped (per group) and each kernel flipped."""
        (dh, dw), G = self.dilation, self.groups
        kH, kW = self.w.shape[2:]
        dil = dilate(self.delta[0], self.stride)
        (pt, pb), (pl, pr) = self.pads
        full = ((dh * (kH - 1) - pt, dh * (kH - 1) - pb + self.rest[0]),
                (dw * (kW - 1) - pl, dw * (kW - 1) - pr + self.rest[1]))
        padded = pad(dil, full)
        flipped = flip_transpose(self.w, G).copy()
        gathered = F.conv2d(Tensor(padded[None]), Tensor(flipped), dilation=self.dilation, groups=G).numpy()[0]
        return dil, full, padded, flipped, gathered


def _shape_line(c):
    extra = []
    if c.stride != (1, 1):
        extra.append(f"stride {_pair_text(c.stride)}")
    if any(p for pair in c.pads for p in pair):
        extra.append(f"padding {c.padding_arg}")
    if c.dilation != (1, 1):
        extra.append(f"dilation {_pair_text(c.dilation)}")
    if c.groups != 1:
        extra.append(f"groups {c.groups}")
    return (f"x {tuple(c.x.shape)}, W {tuple(c.w.shape)} -> y {tuple(c.y.shape)}"
            + ("; " + ", ".join(extra) if extra else ""))


def _header(cv, c, drawn_channels):
    cv.text((14, 32), _shape_line(c), 13)
    notes = _notes(c, drawn_channels)
    if notes:
        cv.text((14, 50), notes, 12, (90, 90, 90))


def _pair_text(p):
    return str(p[0]) if p[0] == p[1] else f"{p[0]},{p[1]}"


def _window_cells(r0, c0, k, d):
    return [(r0 + a * d[0], c0 + b * d[1]) for a in range(k[0]) for b in range(k[1])]


def _outline_cells(cv, g, cells, colour=RED, width=2):
    for r, c in cells:
        g.outline(cv, r, c, colour=colour, width=width)


def _outline_window(cv, g, r0, c0, k, d, colour=RED):
    if d == (1, 1):
        g.outline(cv, r0, c0, k[0], k[1], colour)
    else:
        _outline_cells(cv, g, _window_cells(r0, c0, k, d), colour)


def _pad_mask(shape, pads):
    (pt, pb), (pl, pr) = pads
    m = np.ones(shape, bool)
    m[max(pt, 0):shape[0] - max(pb, 0), max(pl, 0):shape[1] - max(pr, 0)] = False
    return m


def _notes(c, drawn_channels):
    out = []
    if c.x.shape[0] > 1:
        out.append(f"image 0 of {c.x.shape[0]} drawn")
    if c.w.shape[0] > 1:
        out.append(f"output channel 0 of {c.w.shape[0]} drawn")
    if c.w.shape[1] > drawn_channels:
        drawn = "channel 0" if drawn_channels == 1 else f"channels 0-{drawn_channels - 1}"
        out.append(f"input {drawn} of {c.w.shape[1]} (per group) drawn")
    return ("(" + "; ".join(out) + ")") if out else ""


# ---- forward -------------------------------------------------------------------------------------
def _forward(c):
    Cd = min(c.w.shape[1], 3)                      # input channels drawn (of output channel 0's group)
    xs, ws, y = c.x_pad[0, :Cd], c.w[0, :Cd], c.y[0, 0]
    Hp, Wp = xs.shape[1:]
    numbers = max(Hp, Wp) <= NUMBERS_UP_TO
    cell = _auto_cell(max(Hp, Wp), numbers, xs, ws, y)
    kcell = cell if numbers else (_cell_size(ws) if max(c.k) <= NUMBERS_UP_TO else cell)
    grey = _pad_mask((Hp, Wp), c.pads)
    order = _frames_for(*y.shape)
    arrays = c.arrays()
    arrays["drawn_output"] = y
    head = 76

    def draw():
        gx = 20
        kx = gx + Wp * cell + 40
        ox = kx + c.k[1] * kcell + 60
        row_h = max(Hp * cell, c.k[0] * kcell) + 34
        width = ox + y.shape[1] * cell + 30
        height = head + Cd * row_h + 70
        frames = []
        for r, col in order:
            cv = _Canvas(max(width, 760), height)
            cv.text((14, 10), "conv2d forward: the kernel slides over the input; the products in each "
                              "window add up", 15, bold=True)
            _header(cv, c, Cd)
            r0, c0 = r * c.stride[0], col * c.stride[1]
            for ch in range(Cd):
                top = head + 20 + ch * row_h
                gx_ = _grid(cv, gx, top, xs[ch], cell, grey=grey, numbers=numbers,
                            title=f"x[0,{ch}] padded" if ch or any(p for q in c.pads for p in q) else "x[0,0]")
                _outline_window(cv, gx_, r0, c0, c.k, c.dilation)
                _grid(cv, kx, top, ws[ch], kcell, title=f"W[0,{ch}]")
                cv.text((kx - 22, top + c.k[0] * kcell / 2), "\u00d7", 18, anchor="mm")
            og = _grid(cv, ox, head + 20, _filled(y, (r, col), order), cell, numbers=numbers, vmax=np.abs(y).max() or 1,
                       title="y[0,0]")
            og.outline(cv, r, col, colour=RED)
            cells = _window_cells(r0, c0, c.k, c.dilation)
            terms = [f"{_par(xs[ch][p])}\u00b7{_par(ws[ch][a, b])}" for ch in range(Cd)
                     for (p, (a, b)) in zip(cells, np.ndindex(*c.k))]
            expr = " + ".join(terms) if len(terms) <= 9 else f"the sum of {len(terms)} products"
            more = " (+ the channels not drawn)" if c.w.shape[1] > Cd else ""
            cv.text((14, height - 44), f"y[{r},{col}] = {expr}{more} = {_num(y[r, col])}", 14)
            if len(order) < y.size:
                cv.text((14, height - 22), f"one frame per output row ({y.shape[0]} rows, {y.size} cells)", 12, GRID)
            frames.append(cv.im)
        return frames

    return Animation("conv2d forward", arrays, draw, duration=600)


# ---- input gradient: scatter and gather -------------------------------------------------------------
def _input_grad(c):
    stamps = c.stamps()                               # (Ho*Wo, C_in, Hp, Wp)
    scatter_canvas = stamps.sum(0)
    (pt, pb), (pl, pr) = c.pads
    Hp, Wp = scatter_canvas.shape[1:]
    scatter = scatter_canvas[:, pt:Hp - pb, pl:Wp - pr]
    dil, full, padded, flipped, gathered = c.gather_parts()
    H, W = c.x.shape[2:]
    arrays = c.arrays()
    arrays.update(stamps=stamps[:, 0], scatter=scatter, delta_dilated=dil, delta_padded=padded,
                  weight_flipped_swapped=flipped, gather=gathered)
    equal = np.allclose(scatter, c.dx[0]) and np.allclose(gathered, c.dx[0])
    delta, w0 = c.delta[0, 0], c.w[0, 0]
    cum = np.cumsum(stamps[:, 0], axis=0)
    big = max(Hp, Wp, *padded.shape[1:])
    numbers = big <= NUMBERS_UP_TO
    cell = _auto_cell(big, numbers, cum, padded[0], gathered[0], delta, target=260)
    kcell = cell if numbers else (_cell_size(w0) if max(c.k) <= NUMBERS_UP_TO else cell)
    vmax = max(np.abs(cum).max(), np.abs(gathered).max(), 1)
    s_order, g_order = _frames_for(*c.out), _frames_for(H, W)
    summed = c.w.shape[0] > 1
    grey = _pad_mask((Hp, Wp), c.pads)

    def draw():
        Ph, Pw = padded.shape[1:]
        left_w = max(c.out[1] * cell + 60 + 2 * c.k[1] * kcell, Wp * cell) + 40
        right_w = max(Pw * cell + 30 + c.k[1] * kcell, W * cell) + 40
        top_h = max(c.out[0] * cell, Ph * cell, c.k[0] * kcell) + 40
        bottom_h = max(Hp, H) * cell + 40
        width, height = 20 + left_w + 30 + right_w, 114 + top_h + bottom_h + 80
        lx, rx, ty = 20, 20 + left_w + 30, 134
        by = ty + top_h + 10

        def frame(phase, k):
            cv = _Canvas(max(width, 780), height)
            cv.text((14, 10), "conv2d input gradient two ways: scatter (stamps) and gather (full correlation)", 15,
                    bold=True)
            _header(cv, c, 1)
            cv.d.line((rx - 15, 74, rx - 15, height - 60), fill=GRID, width=1)
            cv.lines(lx, 70, ["SCATTER: each \u03b4 cell stamps \u03b4\u00b7W", "onto its window; overlaps add"],
                     13, BLUE)
            cv.lines(rx, 70, ["GATHER: \u03b4 dilated by the stride, padded", "to full, correlated with W flipped"],
                     13, GREEN)
            # scatter side
            n_s = len(s_order) if phase == "s" else None
            done = k if phase == "s" else len(s_order) - 1
            ri, ci = s_order[done]
            idx = ri * c.out[1] + ci
            dg = _grid(cv, lx, ty, delta, cell, numbers=numbers, title="\u03b4[0,0]" + (" ..." if summed else ""))
            _grid(cv, lx + c.out[1] * cell + 30, ty, w0, kcell, title="W[0,0]")
            if phase == "s":
                r0, c0 = ri * c.stride[0], ci * c.stride[1]
                stamp = stamps[idx, 0][r0:r0 + c.dilation[0] * (c.k[0] - 1) + 1:c.dilation[0],
                                       c0:c0 + c.dilation[1] * (c.k[1] - 1) + 1:c.dilation[1]]
                _grid(cv, lx + c.out[1] * cell + 60 + c.k[1] * kcell, ty, stamp, kcell, title="stamp", vmax=vmax)
            canvas = cum[idx]
            sg = _grid(cv, lx, by, canvas, cell, numbers=numbers, vmax=vmax, grey=grey,
                       title="\u03a3 stamps on the padded input" if grey.any() else "\u03a3 stamps = dx[0,0]")
            if phase == "s":
                dg.outline(cv, ri, ci, colour=BLUE)
                _outline_window(cv, sg, ri * c.stride[0], ci * c.stride[1], c.k, c.dilation, BLUE)
                stamp_txt = f"stamp {n_s and k + 1}: \u03b4[{ri},{ci}] = {_num(delta[ri, ci])} times W" + \
                            (" (summed over the output channels)" if summed else "")
                cv.text((lx, height - 62), stamp_txt, 13, BLUE)
            # gather side
            pg = _grid(cv, rx, ty, padded[0], cell, numbers=numbers, grey=_pad_mask(padded.shape[1:], full),
                       title=f"\u03b4 dilated by stride {_pair_text(c.stride)}, padded by "
                             f"{_pair_text((full[0][0], full[1][0]))}")
            _grid(cv, rx + padded.shape[2] * cell + 30, ty, flipped[0, 0], kcell, title="W[0,0] flipped")
            if phase == "s":
                gathered_now = np.full((H, W), np.nan)
            elif phase == "end":
                gathered_now = gathered[0]
            else:
                gr, gc = g_order[k]
                gathered_now = _filled(gathered[0], (gr, gc), g_order)
            rg = _grid(cv, rx, by, gathered_now, cell, numbers=numbers, vmax=vmax, title="gathered = dx[0,0]")
            if phase == "g":
                rg.outline(cv, gr, gc, colour=GREEN)
                _outline_window(cv, pg, gr, gc, c.k, c.dilation, GREEN)
                cv.text((rx, height - 62), f"dx[{gr},{gc}] = window \u00b7 flipped W, summed = {_num(gathered[0, gr, gc])}",
                        13, GREEN)
            if phase == "end":
                height_ = height - 20
                verdict = ("scatter = gather = x.grad from .backward()  \u2713" if equal else
                           "MISMATCH: scatter, gather and .backward() differ")
                cv.text((14, height_ - 42), verdict, 15, GREEN if equal else RED, bold=True)
                cv.lines(14, height - 20 - 17, ["full: the flipped kernel visits every place where it still overlaps "
                                                "\u03b4 by one cell,", "which is every input cell that some window "
                                                                     "touched"], 12, gap=3)
            elif len(s_order) < c.out[0] * c.out[1] or len(g_order) < H * W:
                cv.text((14, height - 20), "large arrays: one frame per row", 12, GRID)
            return cv.im

        return ([frame("s", k) for k in range(len(s_order))] + [frame("g", k) for k in range(len(g_order))]
                + [frame("end", None)])

    return Animation("conv2d input gradient: scatter and gather", arrays, draw, duration=500)


# ---- weight gradient --------------------------------------------------------------------------------
def _weight_grad(c):
    (sh, sw), (dh, dwl) = c.stride, c.dilation
    Ho, Wo = c.out
    kH, kW = c.k
    xs, delta, dW = c.x_pad[0, 0], c.delta[0, 0], c.dw[0, 0]
    # the correlation of the input with delta, by F.conv2d: images as channels, delta as the kernel,
    # the stride as the kernel's dilation and the dilation as the stride (one (o, c) pair: 0, 0)
    corr = F.conv2d(Tensor(c.x_pad[:, 0][None]), Tensor(c.delta[:, 0][None]), stride=c.dilation,
                    dilation=c.stride).numpy()[0, 0, :kH, :kW]
    picks = np.stack([xs[a * dh: a * dh + (Ho - 1) * sh + 1: sh, b * dwl: b * dwl + (Wo - 1) * sw + 1: sw]
                      for a in range(kH) for b in range(kW)])
    arrays = c.arrays()
    arrays.update(weight_grad_correlation=corr, picked=picks)
    Hp, Wp = xs.shape
    numbers = max(Hp, Wp) <= NUMBERS_UP_TO
    cell = _auto_cell(max(Hp, Wp), numbers, xs, delta, target=260)
    kcell = _cell_size(dW) if max(c.k) <= NUMBERS_UP_TO else cell
    grey = _pad_mask((Hp, Wp), c.pads)
    taps = [(a, b) for a in range(kH) for b in range(kW)]

    def draw():
        px = 20 + Wp * cell + 40
        dx_ = px + max(Wo * cell, 120) + 40
        wx = dx_ + Wo * cell + 50
        width, height = wx + kW * kcell + 30, 124 + max(Hp * cell, kH * kcell) + 80
        frames = []
        for t, (a, b) in enumerate(taps):
            cv = _Canvas(max(width, 760), height)
            cv.text((14, 10), "conv2d weight gradient: per kernel tap, the cells it read times \u03b4, "
                              "summed", 15, bold=True)
            _header(cv, c, 1)
            g = _grid(cv, 20, 114, xs, cell, numbers=numbers, grey=grey, title="x[0,0] (padded)" if grey.any() else "x[0,0]")
            _outline_cells(cv, g, [(i * sh + a * dh, j * sw + b * dwl) for i in range(Ho) for j in range(Wo)], ORANGE)
            _grid(cv, px, 114, picks[t], cell, numbers=numbers, title=f"tap ({a},{b}) reads")
            cv.text((dx_ - 20, 114 + Ho * cell / 2), "\u00b7", 22, anchor="mm")
            _grid(cv, dx_, 114, delta, cell, numbers=numbers, title="\u03b4[0,0]")
            shown = np.full((kH, kW), np.nan)
            shown.ravel()[:t + 1] = dW.ravel()[:t + 1]
            wg = _grid(cv, wx, 114, shown, kcell, vmax=np.abs(dW).max() or 1, title="dW[0,0]")
            wg.outline(cv, a, b, colour=ORANGE)
            more = " + the other images" if c.x.shape[0] > 1 else ""
            cv.text((14, height - 50), f"dW[0,0,{a},{b}] = \u03a3 (picked \u00b7 \u03b4){more} = {_num(dW[a, b])}", 14)
            cv.text((14, height - 28), "the whole dW is the correlation of the input with \u03b4 "
                                       "(\u03b4 as the kernel, the stride as its dilation)", 12)
            frames.append(cv.im)
        return frames

    return Animation("conv2d weight gradient", arrays, draw, duration=700)


# ---- modes: valid, same, full ---------------------------------------------------------------------
_MODE_COLOURS = {"valid": BLUE, "same": ORANGE, "full": GREEN}


def _mode_paddings(k):
    """scipy's three modes for a kernel of k taps, as (mode, padding per side): valid pads
    nothing, same keeps the size (an odd k), full pads k - 1 (every placement that still overlaps)."""
    return {"valid": 0, "same": (k - 1) // 2, "full": k - 1}


def _modes_numbers(img, ker):
    """scipy's three modes of correlate2d, here by F.conv2d with padding 0, (k-1)//2 and k-1."""
    k = ker.shape[0]
    out = {"image": img, "kernel": ker}
    for mode, p in _mode_paddings(k).items():
        out[mode] = F.conv2d(Tensor(img[None, None]), Tensor(ker[None, None]), padding=p).numpy()[0, 0]
    return out


def _modes(c):
    img, ker = c.x[0, 0], c.w[0, 0]
    if ker.shape[0] != ker.shape[1] or ker.shape[0] % 2 == 0:
        raise ValueError(f"animate: the modes view needs an odd square kernel, got {ker.shape}")
    nums = _modes_numbers(img, ker)
    arrays = dict(nums)
    frames_spec = []
    for mode, p in _mode_paddings(ker.shape[0]).items():
        Ho, Wo = nums[mode].shape
        for r, cc in ((0, 0), (0, Wo - 1), (Ho - 1, 0), (Ho - 1, Wo - 1)):
            frames_spec.append((mode, p, r, cc))

    def draw():
        return [_modes_frame(nums, [spec]) for spec in frames_spec]

    return Animation("valid, same and full", arrays, draw, duration=900)


def _modes_frame(nums, specs, title=None):
    """The image inside its full-padded frame, kernel footprints at the given (mode, p, r, c)."""
    img, ker = nums["image"], nums["kernel"]
    H, W = img.shape
    k = ker.shape[0]
    P = k - 1
    numbers = max(H, W) <= NUMBERS_UP_TO
    cell = 22 if numbers else 8
    canvas = np.full((H + 2 * P, W + 2 * P), np.nan)
    canvas[P:P + H, P:P + W] = img
    modes = list(dict.fromkeys(s[0] for s in specs))
    panel_w = (W + 2 * P) * cell + 40
    width = 20 + len(modes) * (panel_w + 30)
    ocell = 24 if H + P <= NUMBERS_UP_TO else 8
    height = 90 + (H + 2 * P) * cell + 40 + (H + P) * ocell + 70
    cv = _Canvas(max(width, 900), height)
    cv.text((14, 10), title or f"scipy.signal.correlate2d modes: a {H}x{W} image, a {k}x{k} kernel", 15, bold=True)
    colours = _MODE_COLOURS
    x = 20
    for mode in modes:
        p = _mode_paddings(k)[mode]
        out = nums[mode]
        cv.text((x, 40), f"{mode}: pad {p} \u2192 {out.shape[0]}x{out.shape[1]}"
                         f" = {H} + 2\u00b7{p} \u2212 {k} + 1", 14, colours[mode], bold=True)
        grey = np.isnan(canvas)
        shown = np.where(grey, 0, canvas)
        region = np.zeros_like(grey)
        region[P - p:P + H + p, P - p:P + W + p] = True
        labels = [[_num(v) if np.isfinite(v) else "" for v in row] for row in canvas]
        g = _Grid(x, 90, canvas.shape, cell).draw(cv, np.where(region, shown, np.nan), grey=grey & region,
                                                 numbers=numbers, size=10, labels=labels)
        g.outline(cv, P - p, P - p, H + 2 * p, W + 2 * p, colour=GRID, width=1)
        og_y = 90 + canvas.shape[0] * cell + 30
        og = _grid(cv, x, og_y, out, ocell, size=10, title=f"{mode} output {out.shape[0]}x{out.shape[1]}")
        for m, pp, r, cc in specs:
            if m != mode:
                continue
            g.outline(cv, P - pp + r, P - pp + cc, k, k, colour=colours[mode])
            og.outline(cv, r, cc, colour=colours[mode], width=2)
            if len(specs) == 1:
                rows = [i for i in range(r - pp, r - pp + k) if 0 <= i < H]
                cols = [j for j in range(cc - pp, cc - pp + k) if 0 <= j < W]
                cv.text((x, height - 44), f"{mode} output ({r},{cc}) = {_num(out[r, cc])}: the kernel covers image rows "
                                          f"{r - pp}..{r - pp + k - 1}, columns {cc - pp}..{cc - pp + k - 1}; "
                                          f"{len(rows) * len(cols)} of its {k * k} cells on the image", 13)
        x += panel_w + 30
    cv.text((14, height - 22), "full: every placement where the kernel still overlaps the image by one cell: "
                               f"{H} + {k} \u2212 1 = {H + k - 1} per side", 13)
    return cv.im


# ---- channels: the swap, and the reshape trap -------------------------------------------------------
def _glyph(kh, kw):
    """An 'F' shape: a rotation by 180 degrees is visible at a glance."""
    g = np.zeros((kh, kw))
    g[0, :] = 1
    g[:, 0] = 1
    g[kh // 2, :max(1, (kw + 1) // 2)] = 1
    return g


def _channels_numbers(w, x_shape, rng):
    """W, its channel swap (transpose + flip), W.reshape (the trap), and what each gives as dx."""
    C_out, C_in, kH, kW = w.shape
    swapped_flipped = w.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1].copy()
    reshaped = w.reshape(C_in, C_out, kH, kW)
    labels = np.array([[o, c] for o in range(C_out) for c in range(C_in)]).reshape(C_out, C_in, 2)
    reshaped_from = labels.reshape(C_in, C_out, 2)          # which (o, c) tile lands where after reshape
    c = _Conv(x_shape, w, rng=rng)
    delta_full = Tensor(pad(c.delta, ((kH - 1,) * 2, (kW - 1,) * 2)))     # the delta padded for a full correlation
    right = F.conv2d(delta_full, Tensor(swapped_flipped)).numpy()
    wrong = F.conv2d(delta_full, Tensor(reshaped[:, :, ::-1, ::-1].copy())).numpy()
    return {"weight": w, "swapped_flipped": swapped_flipped, "reshaped": reshaped,
            "reshaped_from": reshaped_from, "delta": c.delta, "input_grad": c.dx, "dx_swapped": right,
            "dx_reshaped": wrong}


def _channels(w, x_shape, rng):
    nums = _channels_numbers(w, x_shape, rng)

    def draw():
        return [_channels_frame(nums, stage) for stage in (1, 2, 3)]

    return Animation("the channel swap and the reshape trap", nums, draw, duration=1800)


_HUES = [(236, 112, 36), (52, 118, 214), (30, 150, 60), (150, 80, 190), (200, 60, 90), (120, 120, 40)]


def _tile(cv, g, arr, hue):
    """One kernel in its input channel's colour, darker where |w| is larger."""
    from PIL import Image

    t = (np.abs(arr) / (np.abs(arr).max() or 1))[..., None] * 0.9
    rgb = (255 + (np.array(hue, float) - 255) * t).astype(np.uint8)
    block = np.repeat(np.repeat(rgb, g.cell, 0), g.cell, 1)
    block[::g.cell, :] = GRID
    block[:, ::g.cell] = GRID
    cv.im.paste(Image.fromarray(block), (g.x, g.y))
    cv.d.rectangle((g.x, g.y, g.x + g.w, g.y + g.h), outline=GRID)


def _channels_frame(nums, stage):
    w, sf, rs, frm = nums["weight"], nums["swapped_flipped"], nums["reshaped"], nums["reshaped_from"]
    C_out, C_in, kH, kW = w.shape
    cell = 9 if max(kH, kW) > 3 else 14
    tile_w, tile_h = max(kW * cell + 14, 50), kH * cell + 30
    x1, x2 = 20, 20 + C_in * tile_w + 50
    x3 = x2 + C_out * tile_w + 50
    width = max(x3 + C_out * tile_w + 20, 1000)
    height = 130 + max(C_out, C_in) * tile_h + 90
    cv = _Canvas(width, height)
    cv.text((14, 10), f"W {tuple(w.shape)}: which kernel goes where for the input gradient", 15, bold=True)
    cv.text((14, 32), "tile (o,c) is the kernel from input channel c to output channel o, coloured by c; "
                      "the 'F' shows which way up it is", 13)

    def tiles(x0, arr, origin, colour_of=lambda i, j: INK, mark=""):
        for i in range(arr.shape[0]):
            for j in range(arr.shape[1]):
                tx, ty = x0 + j * tile_w, 110 + i * tile_h
                o, c = origin(i, j)
                col = colour_of(i, j)
                cv.text((tx, ty), f"({o},{c}){mark}", 11, col, bold=col != INK)
                g = _Grid(tx, ty + 16, (kH, kW), cell)
                _tile(cv, g, arr[i, j], _HUES[c % len(_HUES)])
                if col != INK:
                    g.outline(cv, 0, 0, kH, kW, colour=col, width=2)

    cv.text((x1, 66), f"W: {C_out}x{C_in} tiles (o, c)", 14, bold=True)
    cv.text((x1, 84), "rows: output channels", 12)
    tiles(x1, w, lambda o, c: (o, c))
    if stage >= 2:
        cv.text((x2, 66), f"W.transpose(1,0,2,3)[:, :, ::-1, ::-1]: {C_in}x{C_out}", 14, GREEN, bold=True)
        cv.text((x2, 84), "row c reads (0,c) ... ; each kernel flipped", 12, GREEN)
        tiles(x2, sf, lambda c, o: (o, c), mark="\u21bb")
    if stage >= 3:
        cv.text((x3, 66), f"W.reshape({C_in},{C_out},{kH},{kW}): the TRAP", 14, RED, bold=True)
        cv.text((x3, 84), "same shape; red tiles are in the wrong place; none flipped", 12, RED)
        tiles(x3, rs, lambda i, j: (frm[i, j, 0], frm[i, j, 1]),
              lambda i, j: INK if (frm[i, j, 0], frm[i, j, 1]) == (j, i) else RED)
        err = np.abs(nums["dx_reshaped"] - nums["input_grad"]).max()
        ok = np.allclose(nums["dx_swapped"], nums["input_grad"])
        cv.text((14, height - 60), "full correlation of \u03b4 with the swapped, flipped W = x.grad from .backward()"
                                   "  " + ("\u2713" if ok else "MISMATCH"), 14, GREEN if ok else RED, bold=True)
        cv.text((14, height - 38), f"with W.reshape({C_in},{C_out},{kH},{kW}) instead: the shapes fit and dx is wrong "
                                   f"(off by up to {_num(round(float(err), 2))})", 14, RED, bold=True)
        cv.text((14, height - 18), "swap the channel axes with transpose(1, 0, 2, 3); flip axes 2 and 3 only", 12)
    return cv.im


# ---- pools ---------------------------------------------------------------------------------------------
def _pool(op, input, kernel_size, stride, padding, delta, rng):
    rng = np.random.default_rng(rng)
    x = _values(input, "input", rng, [0, 1, 2, 3, 4, 5])
    if kernel_size is None:
        raise TypeError(f"animate('{op}', ...) needs kernel_size= (e.g. 2)")
    fn = F.max_pool2d if op == "max_pool2d" else F.avg_pool2d
    xt = Tensor(x, requires_grad=True)
    y = fn(xt, kernel_size, stride=stride, padding=padding)          # checks the arguments
    d = _values(y.shape if delta is None else delta, "delta", rng, [1, 2, 3])
    if d.shape != y.shape:
        raise ValueError(f"animate: delta must have the output's shape {y.shape}, got {d.shape}")
    y.backward(Tensor(d))
    k = F.pair(kernel_size, op, "kernel_size", 1)
    s = k if stride is None else F.pair(stride, op, "stride", 1)
    p = F.pair(padding, op, "padding", 0)
    Ho, Wo = y.shape[2:]
    # where each window's gradient goes: the pool's own backward, one window's delta at a time
    one_hot = np.zeros((Ho * Wo, 1, Ho, Wo))
    cells = np.arange(Ho * Wo)
    one_hot[cells, 0, cells // Wo, cells % Wo] = d[0, 0].ravel()
    xr = Tensor(np.repeat(x[:1, :1], Ho * Wo, axis=0), requires_grad=True)
    fn(xr, k, stride=s, padding=p).backward(Tensor(one_hot))
    routes = xr.grad.numpy()[:, 0]
    arrays = {"input": x, "output": y.numpy(), "delta": d, "input_grad": xt.grad.numpy(), "routes": routes}
    return _pool_animation(op, arrays, k, s, p)


def _pool_animation(op, arrays, k, s, p):
    x, y, d, dx, routes = (arrays[n][0, 0] if arrays[n].ndim == 4 else arrays[n]
                           for n in ("input", "output", "delta", "input_grad", "routes"))
    H, W = x.shape
    Ho, Wo = y.shape
    xp = np.pad(x, ((p[0],) * 2, (p[1],) * 2), constant_values=-np.inf if op == "max_pool2d" else 0.0)
    grey = _pad_mask(xp.shape, ((p[0],) * 2, (p[1],) * 2))
    numbers = max(xp.shape) <= NUMBERS_UP_TO
    cum = np.cumsum(routes, axis=0)
    cell = _auto_cell(max(xp.shape), numbers, xp[np.isfinite(xp)], cum, target=260)
    order = _frames_for(Ho, Wo)
    counts = np.cumsum(routes != 0, axis=0)

    def draw():
        ox = 20 + xp.shape[1] * cell + 40
        dxx = ox + 2 * (Wo * cell + 30) + 20
        width, height = dxx + (W + 2 * p[1]) * cell + 30, 110 + xp.shape[0] * cell + 90
        frames = []
        for r, c in order:
            idx = r * Wo + c
            cv = _Canvas(max(width, 700), height)
            what = "max" if op == "max_pool2d" else "mean"
            cv.text((14, 10), f"{op}: each window's {what}, and where its gradient goes", 15, bold=True)
            cv.text((14, 32), f"x {tuple(arrays['input'].shape)}, kernel {_pair_text(k)}, stride {_pair_text(s)}, "
                              f"padding {_pair_text(p)} -> y {tuple(arrays['output'].shape)}", 13)
            g = _grid(cv, 20, 100, xp, cell, numbers=numbers, grey=grey, title="x[0,0]" + (" padded" if any(p) else ""))
            r0, c0 = r * s[0], c * s[1]
            g.outline(cv, r0, c0, k[0], k[1], colour=RED)
            _grid(cv, ox, 100, _filled(y, (r, c), order), cell, numbers=numbers, title="y").outline(cv, r, c)
            dg = _grid(cv, ox + Wo * cell + 30, 100, d, cell, numbers=numbers, title="\u03b4")
            dg.outline(cv, r, c, colour=BLUE)
            got = routes[idx]
            gg = _grid(cv, dxx, 100, np.pad(cum[idx], ((p[0],) * 2, (p[1],) * 2)), cell, numbers=numbers,
                       grey=grey, title="dx: gradients so far")
            receivers = list(zip(*np.nonzero(got)))
            for (i, j) in receivers:
                g.outline(cv, i + p[0], j + p[1], colour=GREEN, width=3)
                gg.outline(cv, i + p[0], j + p[1], colour=GREEN, width=3)
            notes = []
            if op == "max_pool2d":
                win = xp[r0:r0 + k[0], c0:c0 + k[1]]
                ties = [(i, j) for i, j in zip(*np.nonzero(win == win.max()))
                        if (r0 + i - p[0], c0 + j - p[1]) not in receivers]
                for i, j in ties:
                    g.outline(cv, r0 + i, c0 + j, colour=ORANGE, width=2)
                notes.append(f"max {_num(y[r, c])}: all of \u03b4 = {_num(d[r, c])} goes to the green cell")
                if ties:
                    notes.append(f"tie (orange): {len(ties) + 1} cells hold the max; the first in row-major "
                                 "order gets the gradient, as PyTorch")
            else:
                notes.append(f"mean {_num(y[r, c])}: \u03b4 = {_num(d[r, c])} is shared out, "
                             f"{_num(d[r, c])}/{k[0] * k[1]} to each cell (padding counts in the divisor)")
            if any(counts[idx][i, j] > 1 and got[i, j] for i, j in receivers):
                notes.append("overlap: a cell in two windows collects both gradients (they add)")
            if idx == Ho * Wo - 1 or (r, c) == order[-1]:
                ok = np.allclose(cum[-1], dx)
                notes.append("the sum of all windows = x.grad from .backward()  " + ("\u2713" if ok else "MISMATCH"))
            cv.lines(14, height - 70, notes, 13)
            frames.append(cv.im)
        return frames

    return Animation(f"{op}: forward and gradient", arrays, draw, duration=900)


# ================================================================================================
# The public function
# ================================================================================================
def animate(op, *, input, weight=None, stride=None, padding=0, dilation=1, groups=1, kernel_size=None,
            view="forward", delta=None, rng=0):
    """An Animation of `op` ("conv2d", "max_pool2d", "avg_pool2d") on `input` (a shape, filled with
    small random integers from `rng`, or an array), computed by tinygrad_edu's own ops.

    conv2d views: "forward", "input-grad" (scatter and gather, proven equal on the last frame),
    "weight-grad", "modes" (valid / same / full), "channels" (the swap and the reshape trap).
    Pools: one picture (view "forward" or "input-grad"): each window's value and where its gradient
    goes. `delta` (default: random small integers) is the gradient arriving at the output.
    Bad arguments raise the same errors as F.conv2d / F.max_pool2d (naming the shapes)."""
    if op not in VIEWS:
        raise ValueError(f"animate: op must be one of {', '.join(VIEWS)}, got {op!r}")
    if view not in VIEWS[op]:
        raise ValueError(f"animate: {op} has the views {', '.join(VIEWS[op])}, got {view!r}")
    # an option a picture would not show is refused: it must not quietly draw another op
    plain_dilation = F.pair(dilation, "animate", "dilation") == (1, 1)
    if op != "conv2d":
        ignored = {name: value for name, value, plain in (("weight", weight, weight is None),
                                                          ("dilation", dilation, plain_dilation),
                                                          ("groups", groups, groups == 1)) if not plain}
        if ignored:
            raise TypeError(f"animate('{op}', ...) draws a pool from input, kernel_size, stride and padding; it "
                            f"does not take {', '.join(f'{k}={v!r}' for k, v in ignored.items())}")
        return _pool(op, input, kernel_size, stride, padding, delta, rng)
    if kernel_size is not None:
        raise TypeError("animate('conv2d', ...) takes the kernel's size from weight (its shape (O, C, kH, kW)), "
                        f"not kernel_size={kernel_size!r}")
    if view in ("channels", "modes") and not (F.pair(1 if stride is None else stride, "animate", "stride") == (1, 1)
                                             and F.pair(padding, "animate", "padding") == (0, 0) and plain_dilation):
        raise ValueError(f"animate: the {view} view draws a stride-1 conv without padding or dilation (it "
                         f"shows {'the channel swap' if view == 'channels' else 'its own valid/same/full paddings'}); "
                         f"got stride={stride!r}, padding={padding!r}, dilation={dilation!r}")
    if weight is None:
        raise TypeError("animate('conv2d', ...) needs weight= (its shape, e.g. (1, 1, 3, 3), or an array)")
    stride = 1 if stride is None else stride
    if view == "channels":
        if groups != 1:
            raise ValueError(f"animate: the channels view is drawn for groups=1, got groups={groups}")
        w = weight
        if not isinstance(weight, (np.ndarray, Tensor)):
            shape = _values(weight, "weight", np.random.default_rng(rng), [0]).shape
            # each kernel an 'F' scaled by its place, so both the flip and the scramble show
            w = _glyph(*shape[2:])[None, None] * (1 + np.arange(shape[0] * shape[1])).reshape(shape[:2] + (1, 1))
        x_shape = input if not isinstance(input, (np.ndarray, Tensor)) else tuple(np.shape(input))
        c = _Conv(x_shape, w, rng=rng)                     # validates the pair of shapes
        return _channels(c.w, c.x.shape, rng)
    c = _Conv(input, weight, stride, padding, dilation, groups, delta, rng)
    return {"forward": _forward, "input-grad": _input_grad, "weight-grad": _weight_grad,
            "modes": _modes}[view](c)


# ================================================================================================
# The tutorial's pictures (docs/conv-backprop.md): python -m tinygrad_edu.teach.pictures --docs docs/img
# Each builder returns an Animation whose .arrays are the numbers it shows (computed before any
# drawing, so docs_numbers() checks the docs without drawing a pixel).
# ================================================================================================
def _row(cv, x, y, values, cell, **kw):
    return _grid(cv, x, y, np.asarray(values, float).reshape(1, -1), cell, **kw)


def _conv1d(x, w, g, stride=1, padding=0):
    """A 1-D convolution as F.conv2d on (1, 1, 1, n): forward, backward, stamps and gather."""
    as4 = lambda a: np.asarray(a, float).reshape(1, 1, 1, -1)
    return _Conv(as4(x), as4(w), stride=(1, stride), padding=(0, padding), delta=as4(g))


def _p1_stamps():
    """P1: each delta entry stamps g[i]*w onto x[i..i+2]; the stamps span 5 + 3 - 1 = 7 cells."""
    c = _conv1d(np.arange(1, 8), [1, 2, 3], [1, 10, 100, 1000, 10000])
    stamps = c.stamps()[:, 0, 0]
    arrays = {"w": c.w.ravel(), "g": c.delta.ravel(), "stamps": stamps, "dx": c.dx.ravel()}
    g, dx = arrays["g"], arrays["dx"]

    def draw():
        cell = _cell_size(stamps, dx) + 8
        frames = []
        for t in range(len(g) + 1):
            cv = _Canvas(max(60 + 8 * cell + 150, 640), 130 + 7 * (cell + 6) + 120)
            cv.text((14, 10), "Stamps: each g[i] adds g[i]\u00b7w under x[i..i+2]", 15, bold=True)
            cv.text((14, 32), "w = [1, 2, 3], g = [1, 10, 100, 1000, 10000], x has 7 cells", 13)
            x0 = 60
            gg = _row(cv, x0, 80, g, cell, title="g (the delta)")
            _row(cv, x0 + 5 * cell + 30, 80, [1, 2, 3], cell, title="w")
            top = 80 + cell + 40
            _row(cv, x0, top, np.full(7, np.nan), cell, labels=[[f"x{i}" for i in range(7)]], title="under x:")
            for i in range(min(t + 1, len(g))):
                y = top + (i + 1) * (cell + 6)
                cv.text((x0 - 8, y + cell / 2), f"g{i}\u00b7w", 12, anchor="rm")
                sg = _row(cv, x0 + i * cell, y, stamps[i, i:i + 3], cell)
                if i == t:
                    sg.outline(cv, 0, 0, 1, 3, colour=BLUE)
                    gg.outline(cv, 0, i, colour=BLUE)
            ysum = top + 6 * (cell + 6) + 10
            if t == len(g):
                cv.d.line((x0, ysum - 6, x0 + 7 * cell, ysum - 6), fill=INK, width=2)
                _row(cv, x0, ysum, dx, cell, bold=np.ones((1, 7), bool))
                cv.text((x0 - 8, ysum + cell / 2), "dx", 13, anchor="rm", bold=True)
                counts = [int(n) for n in (stamps != 0).sum(0)]
                cv.text((x0 + 7 * cell + 10, ysum + cell / 2), "column sums", 12, anchor="lm")
                cv.lines(14, ysum + cell + 16,
                         [f"stamps per cell: {counts}: the edge cells get one, the middle cells three",
                          "the stamps span 5 + 3 \u2212 1 = 7 cells: that span is what 'full' means"], 13)
            frames.append(cv.im)
        return frames

    return Animation("P1: stamps", arrays, draw, duration=1000, last_duration=4000)


def _p2_gather():
    """P2: the flipped kernel [3, 2, 1] sliding over g in valid, same and full mode."""
    g, k = np.array([1.0, 10, 100, 1000, 10000]), np.array([3.0, 2, 1])
    arrays = {"g": g, "kernel_flipped": k}
    for mode, p in _mode_paddings(len(k)).items():
        arrays[mode] = F.conv2d(Tensor(g.reshape(1, 1, 1, -1)), Tensor(k.reshape(1, 1, 1, -1)),
                                padding=(0, p)).numpy().ravel()

    def draw():
        cell = _cell_size(arrays["full"])
        rows = 3 + 5 + 7 + 3 * 4
        cv = _Canvas(60 + 9 * cell + 260, 70 + rows * (cell + 4) + 40)
        cv.text((14, 10), "Gather: the flipped kernel [3, 2, 1] slides over g; each position gives one sum", 15,
                bold=True)
        y = 50
        for mode, p in _mode_paddings(len(k)).items():
            out = arrays[mode]
            x0 = 60 + (2 - p) * cell
            cv.text((14, y + 4), f"{mode}: g padded by {p} \u2192 {len(out)} positions", 14,
                    _MODE_COLOURS[mode], bold=True)
            y += 26
            padded = np.pad(g, p)
            _row(cv, x0, y, padded, cell, grey=np.pad(np.zeros(5, bool), p, constant_values=True)[None])
            y += cell + 4
            for j, s in enumerate(out):
                _row(cv, x0 + j * cell, y, k, cell, vmax=3)
                cv.text((60 + 9 * cell + 10, y + cell / 2), f"= {_num(s)}", 13, anchor="lm")
                y += cell + 4
            y += 12
        cv.text((14, y), "full is valid's sliding started earlier and stopped later; its 7 sums are x's 7 cells "
                         "(P1's dx)", 13)
        return [cv.im]

    return Animation("P2: valid, same, full in 1-D", arrays, draw)


def _digits_conv():
    return _Conv(np.arange(16.0).reshape(1, 1, 4, 4), np.arange(1.0, 10).reshape(1, 1, 3, 3),
                 delta=np.array([[[[1.0, 10], [100, 1000]]]]))


def _p3_taps():
    """P3: delta [[1,10],[100,1000]] and kernel 1..9: the digits of dx name the kernel taps."""
    c = _digits_conv()
    dil, full, padded, flipped, gathered = c.gather_parts()
    arrays = {"delta": c.delta[0, 0], "weight": c.w[0, 0], "delta_padded": padded[0],
              "weight_flipped": flipped[0, 0], "input_grad": c.dx[0, 0], "gather": gathered[0]}

    def draw():
        cell = _cell_size(c.dx)
        cv = _Canvas(20 + 18 * cell + 220, 110 + 6 * cell + 120)
        cv.text((14, 10), "The digits name the taps: \u03b4 = [[1, 10], [100, 1000]], W = 1..9", 15, bold=True)
        cv.text((14, 32), "\u03b4 padded with k \u2212 1 = 2 zeros on each side, correlated with W flipped = "
                          "the full result", 13)
        x = 20
        _grid(cv, x, 90, arrays["delta"], cell, title="\u03b4 (2x2)")
        x += 2 * cell + 30
        _grid(cv, x, 90, arrays["weight"], cell, title="W (3x3)")
        x += 3 * cell + 40
        pg = _grid(cv, x, 90, arrays["delta_padded"], cell, grey=_pad_mask((6, 6), ((2, 2), (2, 2))),
                   title="\u03b4 padded (6x6)")
        pg.outline(cv, 1, 1, 3, 3, colour=RED)
        x += 6 * cell + 30
        _grid(cv, x, 90, arrays["weight_flipped"], cell, title="W flipped")
        x += 3 * cell + 40
        og = _grid(cv, x, 90, arrays["input_grad"], cell, title="dx (4x4)")
        og.outline(cv, 1, 1, colour=RED)
        win = padded[0, 1:4, 1:4]
        terms = sorted(((win[a, b], 2 - a, 2 - b) for a in range(3) for b in range(3) if win[a, b]), reverse=True)
        text = " + ".join(f"{_num(v)}\u00b7W{i}{j}" for v, i, j in terms)
        taps = [int(c.w[0, 0, 1 - i, 1 - j]) for i in range(2) for j in range(2)]
        cv.lines(14, 110 + 6 * cell, [f"dx[1,1] = {_num(c.dx[0, 0, 1, 1])} = {text}",
                                      f"g read in order 1, 10, 100, 1000 meets taps {', '.join(map(str, taps))}: "
                                      "the flip", "2x2 \u2192 4x4 undoes 4x4 \u2192 2x2 (a 3x3 kernel)"], 14)
        return [cv.im]

    return Animation("P3: digits that name the taps", arrays, draw)


def _p5_rot180():
    """P5: flip axes 2 and 3 (each tile rotated) versus np.rot90(W, 2) (tiles reordered, unrotated)."""
    tap = np.arange(1.0, 10).reshape(3, 3)
    W = 100 * np.arange(2.0)[:, None, None, None] + 10 * np.arange(3.0)[None, :, None, None] + tap
    flipped = W[:, :, ::-1, ::-1]
    rot = np.rot90(W, 2)
    arrays = {"W": W, "flipped": flipped.copy(), "rot90": rot.copy()}

    def draw():
        cell = _cell_size(W)
        tile = 3 * cell + 14
        cv = _Canvas(3 * (3 * tile + 40) + 40, 120 + 2 * (3 * cell + 30) + 110)
        cv.text((14, 10), "What 'rotate 180 degrees' must touch: axes 2 and 3 only", 15, bold=True)
        cv.text((14, 32), "W (2, 3, 3, 3): tile (o, c) holds 100\u00b7o + 10\u00b7c + tap", 13)
        panels = [(W, "W", INK), (flipped, "W[:, :, ::-1, ::-1]  \u2713 tiles rotated", GREEN),
                  (rot, "np.rot90(W, 2)  \u2717 tiles reordered", RED)]
        for k, (arr, name, col) in enumerate(panels):
            x0 = 20 + k * (3 * tile + 40)
            cv.text((x0, 70), name, 13, col, bold=True)
            for o in range(2):
                for ch in range(3):
                    _grid(cv, x0 + ch * tile, 100 + o * (3 * cell + 30), arr[o, ch], cell, size=11)
        cv.lines(14, 120 + 2 * (3 * cell + 30), [
            "np.rot90(W, 2) turns axes 0 and 1, the channels: the shape stays (2, 3, 3, 3), the tiles swap places, "
            "none is rotated", "np.rot90(W, 2, axes=(2, 3)) = W[:, :, ::-1, ::-1]; np.flip(W) (no axis) flips all "
                               "four axes; W.T is (3, 3, 3, 2)"], 13)
        return [cv.im]

    return Animation("P5: rot180", arrays, draw)


def _p6_stride():
    """P6: stride 2 by hand: windows, stamps, the dilated delta, the remainder; then 2-D."""
    c5 = _conv1d([1, 2, 3, 4, 5], [1, 2, 3], [10, 100], stride=2)
    c6 = _conv1d([1, 2, 3, 4, 5, 6], [1, 2, 3], [10, 100], stride=2)
    c2 = _Conv(np.arange(25.0).reshape(1, 1, 5, 5), np.arange(1.0, 10).reshape(1, 1, 3, 3), stride=2,
               delta=np.array([[[[1.0, 10], [100, 1000]]]]))
    s5, s6 = c5.stamps()[:, 0, 0], c6.stamps()[:, 0, 0]
    _, _, pad5, _, gat5 = c5.gather_parts()
    dil2, _, pad2, flip2, gat2 = c2.gather_parts()
    arrays = {"x5": c5.x.ravel(), "y5": c5.y.ravel(), "g": c5.delta.ravel(), "stamps5": s5, "dx5": c5.dx.ravel(),
              "delta_padded5": pad5.ravel(), "gather5": gat5.ravel(), "stamps6": s6, "dx6": c6.dx.ravel(),
              "delta2d": c2.delta[0, 0], "dilated2d": dil2[0], "padded2d": pad2[0], "dx2d": c2.dx[0, 0],
              "gather2d": gat2[0]}

    def frame(kind, t):
        cell = 44
        cv = _Canvas(760, 420)
        cv.text((14, 10), "Stride 2 by hand: x of 5 cells, w = [1, 2, 3], g = [10, 100]" if kind != "2d" else
                "Stride 2 in 2-D: \u03b4 = [[1, 10], [100, 1000]], W = 1..9", 15, bold=True)
        x0 = 90
        if kind == "fwd":
            cv.text((14, 34), "forward: the windows start at 0 and 2", 13)
            g = _row(cv, x0, 80, arrays["x5"], cell, title="x")
            g.outline(cv, 0, 2 * t, 1, 3)
            _row(cv, x0, 160, [arrays["y5"][0], arrays["y5"][1] if t else np.nan], cell, title="y").outline(cv, 0, t)
        elif kind == "stamp":
            cv.text((14, 34), "backward, scatter: each g[i] stamps g[i]\u00b7w back onto its window", 13)
            _row(cv, x0, 80, arrays["g"], cell, title="g").outline(cv, 0, t, colour=BLUE)
            for i in range(t + 1):
                _row(cv, x0 + 2 * i * cell, 150 + i * (cell + 6), s5[i, 2 * i:2 * i + 3], cell)
            if t == 1:
                _row(cv, x0, 150 + 2 * (cell + 6) + 10, arrays["dx5"], cell, title="dx (column sums)")
        elif kind == "gather":
            cv.text((14, 34), "backward, gather: [g0, 0, g1] (the stride's zeros), padded by 2, \u00d7 [3, 2, 1]",
                    13)
            pg = _row(cv, x0, 80, arrays["delta_padded5"], cell, grey=(arrays["delta_padded5"] == 0)[None],
                      title="g dilated and padded")
            pg.outline(cv, 0, t, 1, 3, colour=GREEN)
            _row(cv, x0 + t * cell, 80 + cell + 6, [3, 2, 1], cell, vmax=3)
            shown = np.full(5, np.nan)
            shown[:t + 1] = arrays["gather5"][:t + 1]
            _row(cv, x0 + 2 * cell, 200, shown, cell, title="dx").outline(cv, 0, t, colour=GREEN)
        elif kind == "six":
            cv.text((14, 34), "x of 6 cells: no window starts at 4, so the last cell gets no stamp", 13)
            for i in range(2):
                _row(cv, x0 + 2 * i * cell, 80 + i * (cell + 6), s6[i, 2 * i:2 * i + 3], cell)
            grey = np.zeros((1, 6), bool)
            grey[0, 5] = True
            _row(cv, x0, 80 + 2 * (cell + 6) + 10, arrays["dx6"], cell, grey=grey, title="dx")
            cv.lines(14, 260, ["the remainder: the last cell is read by no window, its gradient is 0 (grey)",
                               "gather: pad 2 at the start and 2 + 1 at the end; that 1 is output_padding"], 13)
        else:
            cell = 34
            cv.text((14, 34), "2-D: 5x5 input, 3x3 kernel 1..9, stride 2 \u2192 2x2 \u03b4 \u2192 dilated 3x3 "
                              "\u2192 padded 7x7 \u2192 dx 5x5", 13)
            x = 20
            for arr, name in ((arrays["delta2d"], "\u03b4"), (arrays["dilated2d"], "dilated"),
                              (arrays["padded2d"], "padded"), (arrays["dx2d"], "dx")):
                grey = _pad_mask(arr.shape, ((2, 2), (2, 2))) if arr.shape[0] == 7 else None
                _grid(cv, x, 90, arr, cell, size=10, title=name, grey=grey)
                x += arr.shape[1] * cell + 20
            cv.text((14, 90 + 7 * cell + 20), "dx = the padded, dilated \u03b4 correlated with W flipped "
                                              "(= x.grad from .backward())", 13)
        return cv.im

    def draw():
        return ([frame("fwd", t) for t in range(2)] + [frame("stamp", t) for t in range(2)]
                + [frame("gather", t) for t in range(5)] + [frame("six", 0), frame("2d", 0)])

    return Animation("P6: stride", arrays, draw, duration=1300, last_duration=5000)


def _p7_padding():
    """P7: padding 1 by hand: stamps fill 6 cells, the 2 padding cells are cut off; = pad g by k-1-p."""
    c = _conv1d([1, 2, 3, 4], [1, 2, 3], [1, 10, 100, 1000], padding=1)
    stamps = c.stamps()[:, 0, 0]
    _, _, padded, _, gathered = c.gather_parts()
    arrays = {"g": c.delta.ravel(), "stamps": stamps, "full": stamps.sum(0), "dx": c.dx.ravel(),
              "delta_padded": padded.ravel(), "gather": gathered.ravel()}

    def draw():
        cell = _cell_size(stamps) + 8
        cv = _Canvas(1000, 120 + 12 * (cell + 6) + 80)
        cv.text((14, 10), "Padding 1 by hand: x of 4 cells padded to 6, w = [1, 2, 3], g = [1, 10, 100, 1000]", 15,
                bold=True)
        x0 = 100
        grey = np.zeros((1, 6), bool)
        grey[0, [0, 5]] = True
        cv.text((14, 50), "scatter: the stamps fill the 6 padded cells", 13, BLUE, bold=True)
        y = 76
        for i in range(4):
            _row(cv, x0 + i * cell, y, stamps[i, i:i + 3], cell)
            y += cell + 6
        _row(cv, x0, y + 4, arrays["full"], cell, grey=grey, title="")
        cv.text((x0 - 8, y + 4 + cell / 2), "full", 13, anchor="rm")
        cv.text((x0 + 6 * cell + 12, y + 4 + cell / 2), "\u2192 cut the grey padding cells off:", 13, anchor="lm")
        _row(cv, x0 + 6 * cell + 250, y + 4, arrays["dx"], cell, bold=np.ones((1, 4), bool))
        y += cell + 40
        cv.text((14, y), "gather: pad g by k \u2212 1 \u2212 p = 1, slide [3, 2, 1]: the same 4 numbers", 13, GREEN,
                bold=True)
        y += 26
        _row(cv, x0, y, arrays["delta_padded"], cell, grey=grey)
        y += cell + 6
        for j in range(4):
            _row(cv, x0 + j * cell, y, [3, 2, 1], cell, vmax=3)
            cv.text((x0 + 6 * cell + 12, y + cell / 2), f"= {_num(arrays['gather'][j])}", 13, anchor="lm")
            y += cell + 4
        cv.text((14, y + 10), "forward 'same' (4 in, 4 out) gives backward 'same'", 13)
        return [cv.im]

    return Animation("P7: padding", arrays, draw)


def _p8_matrix():
    """P8: conv as a matrix A (y = A x): dx = A^T g; A^T's rows read the kernel backwards."""
    # A column by column: F.conv2d of unit inputs; A^T: F.conv_transpose2d of unit deltas
    w1 = np.array([1.0, 2, 3])
    X = np.eye(4).reshape(4, 1, 1, 4)
    A1 = F.conv2d(Tensor(X), Tensor(w1.reshape(1, 1, 1, 3))).numpy().reshape(4, 2).T
    At1 = F.conv_transpose2d(Tensor(np.eye(2).reshape(2, 1, 1, 2)), Tensor(w1.reshape(1, 1, 1, 3))).numpy().reshape(2, 4).T
    w2 = np.arange(1.0, 10).reshape(1, 1, 3, 3)
    A2 = F.conv2d(Tensor(np.eye(16).reshape(16, 1, 4, 4)), Tensor(w2)).numpy().reshape(16, 4).T
    At2 = F.conv_transpose2d(Tensor(np.eye(4).reshape(4, 1, 2, 2)), Tensor(w2)).numpy().reshape(4, 16).T
    arrays = {"A1": A1, "At1": At1, "A2": A2, "At2": At2}

    def draw():
        cell = 34
        cv = _Canvas(900, 520 + 16 * 22)
        cv.text((14, 10), "The matrix: y = A x, dx = A\u1d40 g  (why 'transposed', why 'full')", 15, bold=True)
        lab = lambda M: [[f"w{int(v) - 1}" if v else "0" for v in row] for row in M]
        cv.text((20, 60), "1-D, n = 4, k = 3: A (2x4)", 13, bold=True)
        _grid(cv, 20, 90, A1, cell, labels=lab(A1), vmax=3)
        cv.text((260, 60), "A\u1d40 (4x2): dx = A\u1d40 g", 13, bold=True)
        gA = _grid(cv, 260, 90, At1, cell, labels=lab(At1), vmax=3)
        gA.outline(cv, 0, 0, 1, 2, colour=ORANGE)
        gA.outline(cv, 3, 0, 1, 2, colour=ORANGE)
        cv.lines(360, 90, ["rows [w0, 0], [w1, w0], [w2, w1], [0, w2]:",
                           "every row reads the kernel backwards (the flip)",
                           "the edge rows (orange) see one tap: the edges of full mode"], 13)
        y = 250
        cv.text((20, y), "2-D: 4x4 input, 3x3 kernel 1..9: A (4x16), each row one window; "
                         "A\u1d40 (16x4), row p = dx[p] from the 4 \u03b4 entries", 13, bold=True)
        blank0 = lambda M: [[_num(v) if v else "" for v in row] for row in M]
        _grid(cv, 20, y + 30, A2, 22, size=10, vmax=9, numbers=True, labels=blank0(A2))
        gt = _grid(cv, 420, y + 30, At2, 22, size=10, vmax=9, numbers=True, labels=blank0(At2))
        for r in (0, 5, 15):
            gt.outline(cv, r, 0, 1, 4, colour=ORANGE, width=2)
        taps = lambda r: ", ".join(_num(v) for v in At2[r] if v)
        cv.lines(540, y + 30, [f"A\u1d40 row 0 (dx[0,0]): taps {taps(0)}", f"row 5 (dx[1,1]): taps {taps(5)}",
                               f"row 15 (dx[3,3]): taps {taps(15)}", "", "the numbers are tap numbers of W = 1..9:",
                               "computed by F.conv2d of unit images (A)", "and F.conv_transpose2d of unit deltas (A\u1d40)"],
                 13)
        return [cv.im]

    return Animation("P8: the matrix", arrays, draw)


_MAXPOOL_X = np.array([[1.0, 5, 2, 0, 3], [4, 2, 5, 1, 0], [0, 3, 1, 6, 2], [2, 6, 0, 2, 1], [1, 0, 4, 3, 5]])


def _docs_builders():
    digits = _digits_conv()
    return {
        "stamps-1d.gif": _p1_stamps,
        "gather-1d.png": _p2_gather,
        "taps-digits.png": _p3_taps,
        "channels.png": lambda: _last_only(animate("conv2d", view="channels", input=(1, 3, 12, 12),
                                                   weight=(6, 3, 5, 5))),
        "rot180.png": _p5_rot180,
        "stride-1d.gif": _p6_stride,
        "padding-1d.png": _p7_padding,
        "matrix.png": _p8_matrix,
        "modes.png": _modes_still,
        "conv2d-forward.gif": lambda: animate("conv2d", view="forward", input=(1, 1, 5, 5), weight=(1, 1, 3, 3),
                                              padding=1),
        "input-grad.gif": lambda: animate("conv2d", view="input-grad", input=digits.x, weight=digits.w,
                                          delta=digits.delta),
        "weight-grad.gif": lambda: animate("conv2d", view="weight-grad", input=(1, 1, 5, 5), weight=(1, 1, 3, 3)),
        "max-pool.gif": lambda: animate("max_pool2d", input=_MAXPOOL_X[None, None], kernel_size=3, stride=2,
                                        delta=np.array([[[[1.0, 2], [3, 4]]]])),
    }


def _last_only(anim):
    draw = anim._draw
    anim._draw = lambda: draw()[-1:]
    return anim


def _modes_still():
    rng = np.random.default_rng(0)
    nums = _modes_numbers(rng.choice([-2.0, -1, 0, 1, 2, 3], (8, 8)), rng.choice([-1.0, 0, 1, 2], (5, 5)))
    specs = []
    for mode, p in _mode_paddings(5).items():
        n = nums[mode].shape[0]
        specs += [(mode, p, r, c) for r, c in ((0, 0), (0, n - 1), (n - 1, 0), (n - 1, n - 1))]
    return Animation("valid, same, full", dict(nums), lambda: [_modes_frame(
        nums, specs, "scipy's modes on an 8x8 image and a 5x5 kernel: the kernel at the four corner outputs")])


def docs_numbers():
    """{picture file name: {array name: nested lists}}: every number the docs' pictures show."""
    return {name: {k: np.asarray(v, float).tolist() for k, v in build().arrays.items()}
            for name, build in _docs_builders().items()}


def write_docs_pictures(outdir, only=None, log=print):
    """Draw every picture of docs/conv-backprop.md into `outdir`, and numbers.json beside them."""
    import time

    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    numbers = {}
    for name, build in _docs_builders().items():
        if only and name not in only:
            continue
        start = time.perf_counter()
        anim = build()
        numbers[name] = {k: np.asarray(v, float).tolist() for k, v in anim.arrays.items()}
        anim.save(outdir / name)
        log(f"{outdir / name}: {len(anim.frames)} frame(s), {(outdir / name).stat().st_size // 1024} KB, "
            f"{time.perf_counter() - start:.2f} s")
    if not only:
        (outdir / "numbers.json").write_text(json.dumps(numbers, sort_keys=True) + "\n")
    return numbers


def main(argv=None):
    import sys

    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or argv[0] != "--docs":
        print("usage: python -m tinygrad_edu.teach.pictures --docs DIR", file=sys.stderr)
        return 2
    write_docs_pictures(argv[1])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
