"""Finding the digit in a real photo or scan: the ink strokes that make up the digit, and nothing else.

Runs on a copy scaled to at most WORK_SIDE, with OpenCV:
1. polarity: the background is what most pixels are, so ink is the minority (dark on paper, or light on a board);
2. background: a grey opening (wider than any stroke) estimates the paper's brightness locally, so a gradient, a
   vignette or a cast shadow is background, not ink; dark ink's contrast is taken relative to that brightness, so
   the same pen reads the same in a shadow as in full light, and the bar is set by the sensor's noise (a pixel's
   difference from its neighbours), not by the picture's content. When no sheet is found and the digit found is
   one filled, convex patch, or holds a patch far thicker than its strokes (a shadow narrower than the opening),
   the steps run again with a narrow opening; when a sheet was found and the digit found is such a patch, or the
   picture is a close crop whose ink reads light, or the "sheet" is a dark ground's, the picture is read again as
   light ink (light strokes on a dark ground, closed over, pass for a sheet, and so does a dark ground's lit side
   under uneven light);
3. the sheet: on a photo of a sheet lying on a table, marks off the sheet (the large unsaturated, or else pale,
   region with the table showing along the picture's edge) count far less;
4. lines: long straight runs far longer than thick (ruled lines, form boxes), and the short straight sides standing
   on them (a box's sides, a comb's ticks), are removed, but a lone upright one on a scan is a pen's 1; a stroke
   crossing a line keeps its crossing; on a ruled or squared page, a speck left, or on a squared page (its grid
   looked for below the ink's bar too when printed faint) marks no stronger than its lines, are what remains of
   them (the form's rules, lines, frames, cells and labels, are in app.printed_forms);
5. components: the digit is the component with the most ink, counted less off-centre, off the sheet and in a
   printed word (a row of letters alike in height); a mark touching the picture's edge (the table, the sheet's
   edge) is chosen only when nothing else is there, and on a scan a wide mark level with it on its left (a form's
   label, its letters run together) counts far less. Components close to it belong to the digit; specks, frames,
   a label's letters and far-away marks are dropped. On a photo of a sheet, a mark off the sheet, along its edge or
   at the picture's edge, is the sheet's edge or the table beside it, and one among other marks off the sheet is
   the table's pattern; on a scanned form a comb's tick outside a closed cell, and a label printed over the field
   clear of its lines, are the form's: chosen, any of these means the page is blank. When no sheet and no printed
   line is found and the digit's strokes barely clear the ink's bar (a fine pen pressed lightly, broken into pieces
   at that bar), steps 4 and 5 run again with the bar as low as the paper's own texture allows.

A small picture may be cropped close to its digit, whose strokes then run along the picture's edges, where steps 3
and 5 look for the table and the sheet's edge: it is looked at first inside a margin of its own background, unless
it has a form's printed lines (a field's scan, whose lines run along and across it)."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from app.ink_masks import ink_distance, odd, stroke_width
from app.printed_forms import (
    TEXT_WEIGHT,
    cells,
    form_ticks,
    frames,
    in_text_row,
    is_ruled,
    is_squared,
    labels_above,
    labels_beside,
    on_lines,
    printed_lines,
    without_frames,
    written_field,
)

WORK_SIDE = 400  # the longer side of the working copy, for a picture at least this large
# A small picture is worked on at twice its size, but at least at MIN_WORK_SIDE: its thin lines and strokes need a
# few pixels for the morphology to tell them apart, and more pixels than that add work, not detail.
MIN_WORK_SIDE = 200
SHRINK = 4  # the background and the sheet are found at 1/SHRINK of the working size
COLOUR_SIDE = WORK_SIDE // SHRINK  # colour only tells the sheet from the table, found at the shrunk size
BACKGROUND_SPAN = 0.5  # the background opening's width, as a share of the working copy's longer side
# On a photographed sheet the digit is a small part of the picture and its strokes are mostly thin: a narrower
# opening follows a cast shadow's outline more closely. It is also the second try when the wide one finds a shadow.
SHEET_BACKGROUND_SPAN = 0.05
# A marker's strokes can be thicker than that opening, which then takes them for background. Under them the paper is
# a median over a window this share of the longer side: it passes over a digit's strokes, which fill less than half
# of it, but keeps a wide shadow ...
SHEET_MEDIAN_SPAN = 0.25
THICK_MARK = 0.3  # ... where the opening stands above the median in a mark shorter than this share: a digit's size
# A cast shadow taken for ink is one filled, convex patch: as thick as this share of its length or more (a pen's
# stroke, even a bold digit's, is thinner for its length) ...
BLOB_THICKNESS = 0.4
BLOB_SOLIDITY = 0.95  # ... and filling more than this share of its convex hull (a digit's strokes leave gaps)
BLOB_CORE = 127  # found ink this strong (of 255) is a patch's core; the faint rim around strokes would fill their gaps
# A shadow's part that joins the digit's strokes is thicker than the pen: a disc this many pen widths across fits
# inside it, and nowhere in a pen's stroke (where strokes cross or a loop fills, a little of it fits) ...
PATCH_WIDTHS = 3.0
PATCH_SHARE = 0.3  # ... over more than this share of the found ink
# A shadow is fainter than the pen that wrote over it: the narrow opening's strokes are taken only if the darkest
# tenth of the ink they leave out is fainter than this share of the darkest tenth of the ink they keep. Left-out ink
# as dark as the kept strokes is the digit's own (a filled loop, a broad stroke), not a shadow.
SHADOW_SHARE = 0.9
OFF_SHEET = 0.02  # weight of marks off the sheet (table texture, most often) when choosing the digit
# A mark is on the sheet when at least this share of its ink is: the sheet's edge, standing out along two of its
# sides, is an L whose centre lies on the sheet but whose ink does not.
ON_SHEET_SHARE = 0.5
LIGHT_INK_SHARE = 0.3  # light strokes on a dark ground cover less than this share of the picture, or are thin
SHEET_THICKNESS = 0.4  # a sheet's bright part is at least this thick for its length; a stroke is thinner
MIN_CONTRAST = 24  # ink must stand this far (of 255) above the background, or the image counts as blank
NOISE_SIGMAS = 5.0  # ink stands this many noise deviations above the background
# A faint pen on quiet paper: strokes whose strongest tenth stands less than FAINT_STROKES times the ink's bar above
# the paper break into specks at that bar. On a page without printed lines, the bar comes down to PAPER_TEXTURE
# times the paper's own texture (the picture's 90th percentile of contrast: most of it is paper), never below
# FAINT_CONTRAST.
FAINT_STROKES = 3.0
PAPER_TEXTURE = 3.0
FAINT_CONTRAST = 12
# The digit's contrast at this percentile counts as full ink: a pen's pressure varies along a stroke, and its
# fainter parts are still ink.
STROKE_CORE = 75
INK_SHARE = 0.5  # ink around the digit's strokes counts from half this share of their contrast
MIN_PAPER = 40  # the darkest paper (of 255) that dark ink's contrast is taken relative to
EDGE = 0.02  # a mark closer than this share of the shorter side to the picture's edge touches it
EDGE_MARK = 0.25  # a mark touching the picture's edge is a digit only if this share of the shorter side long
CENTRE_PULL = 0.8  # how much less a component at the picture's edge counts than one in its middle
MIN_DIGIT = 0.06  # a mark shorter than this share of the picture's shorter side is a speck, too small to read
NEAR = 0.5  # components within this share of the main component's size (around it) belong to the digit
MIN_PART = 0.02  # ... if at least this share of its area
MAX_MARKS = 300  # the marks with the most ink weighed against each other, pair by pair; fainter specks are dropped
AROUND = 0.04  # fainter ink within this share of the picture's longer side of the chosen strokes is kept
SHEET_INK_SPAN = 0.06  # closing this share of the picture's longer side covers the ink when finding the sheet
SHEET_CUT = 0.08  # pale marks narrower than this share of the picture's longer side are the table's, not the sheet
SHEET_MARGIN = 0.03  # the sheet's edge, this share of the picture's longer side, is left out
EDGE_BAND = 2 * SHEET_MARGIN  # a mark off the sheet within this share of the longer side of it lies along its edge
EDGE_ASPECT = 2.5  # ... if it is this many times as long as it is wide
TABLE_MARKS = 3  # a mark off the sheet among this many marks there (itself included) is the table's pattern ...
TABLE_PIECE = 0.25  # ... counting those at least this share of its size
SHEET_CONTRAST = 40  # a table differs from the paper by this much brightness (of 255), or by its colour
SHEET_SATURATION = 60  # paper is grey-ish: its colour saturation (0-255, relative to its brightness) stays below this
FLAT_TABLE = 0.9  # a surround with more than this share of its pixels at one exact level is a drawing's ground
# Paper is the brightest large thing in a photo of it, and what is written on it is darker. A "sheet" darker than
# DIM_PAPER (of 255) and than LIGHT_WRITING times the picture's brightest level (its BRIGHTEST percentile: a few
# strokes' worth of pixels) may be the lit side of a dark ground with light writing on it, if less than BRIGHT_BORDER
# of the picture's border is as bright (halfway from the ground to that level): writing lies on its ground, while a
# bright thing running off the picture is something photographed. A heavy shadow can leave a sheet as dark beside
# its lit part, so this only decides between readings once dark writing found on the "sheet" is a blob or a patch,
# or once the light reading is chalk's: clear of the picture's edge and standing LIGHT_STROKES (of 255) above its
# ground (a shaded sheet's lit sliver runs to its edge, or barely stands out from the shade).
DIM_PAPER = 64
LIGHT_WRITING = 0.3
BRIGHTEST = 99.5
BRIGHT_BORDER = 0.02
LIGHT_STROKES = 100
# A photo of a sheet with the table around it is never this small (px on its longer side): its digit would be a few
# pixels tall. A smaller picture is a scan, a drawing or a crop, and none is looked for: on a small JPEG the
# compression's noise hides a drawing's flat dark ground from FLAT_TABLE, and its light strokes, closed over, pass
# for a sheet.
SHEET_PHOTO_SIDE = 100
SHEET_BORDER = 0.2  # the table around a sheet shows along at least this share of the picture's edge
MIN_SHEET = 0.15  # a sheet covers at least this share of the picture
LIGHT_SHEET_SPAN = 0.9  # light strokes closed over into a "sheet" span this share of its height and width
RULING_GAP = 2.0  # writing this many times the contrast of a notebook's printed ruling is read above the ruling ...
RULING_MARGIN = 1.25  # ... with ink counted from this many times the ruling's contrast
# A blank squared page printed faint: what its lines leave is as thin as they are (FAINT_LINE_WIDTH pixels of the
# working copy) and stands less than FAINT_MARK times the ink's bar above the paper; its lines are found at
# FAINT_RULING of the bar, and what is written stands more than RULING_MARGIN times as high as they do.
FAINT_LINE_WIDTH = 3.0
FAINT_MARK = 2.0
FAINT_RULING = 0.5
# A picture smaller than the working copy may be cropped close to its digit (a phone's photo is larger, and shows
# the sheet's edges and the table). It is looked at again inside a margin of this share of its longer side ...
CROP_SIDE = WORK_SIDE
CROP_MARGIN = 0.25
CROP_SPAN = 0.75  # ... and a digit found spanning this share of its height or width is what it was cropped to


def working_copy(gray: np.ndarray, chroma: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    """The picture (and its colour saturation, which may come at any size) at the working size."""
    height, width = gray.shape
    scale = min(WORK_SIDE, max(MIN_WORK_SIDE, 2 * max(height, width))) / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    method = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    small = cv2.resize(gray.astype(np.float32), size, interpolation=method)
    if chroma is None:
        return small, None
    return small, cv2.resize(chroma.astype(np.float32), size, interpolation=cv2.INTER_LINEAR)


def thickness(part: np.ndarray, box: np.ndarray) -> float:
    """How thick a connected piece is for its length: twice its deepest distance to what surrounds it, over the
    longer side of its box (its row of OpenCV's component stats)."""
    return 2 * float(ink_distance(part).max()) / max(box[cv2.CC_STAT_WIDTH], box[cv2.CC_STAT_HEIGHT])


def ink_is_dark(gray: np.ndarray) -> bool:
    """Dark ink on paper unless the picture is mostly dark with a small bright part, or a thin one: light strokes on
    a board, an MNIST-style image, a digit cropped close to its strokes (its bright part covers much of the picture,
    but is thin). A sheet of paper on a dark table is a large, thick bright part."""
    level = np.clip(gray, 0, 255).astype(np.uint8)
    if np.median(level) >= 128:
        return True
    _, bright = cv2.threshold(level, 0, 1, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    if bright.mean() < LIGHT_INK_SHARE:
        return False
    _, labels, stats, _ = cv2.connectedComponentsWithStats(bright, connectivity=8)
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    return thickness(labels == largest, stats[largest]) > SHEET_THICKNESS


def shrunk(image: np.ndarray) -> np.ndarray:
    """The image shrunk SHRINK times on each side, where the background is estimated."""
    height, width = image.shape
    return cv2.resize(image, (max(1, width // SHRINK), max(1, height // SHRINK)), interpolation=cv2.INTER_AREA)


def grown_back(level: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A background level found small, at `shape` again. One small pixel of dilation before enlarging keeps a
    shadow's sharp edge on the background side."""
    level = cv2.dilate(level, np.ones((3, 3), np.uint8))
    return cv2.resize(level, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)


def small_span(share: float, shape: tuple[int, int]) -> int:
    """A window `share` of the longer side of a working copy of `shape`, in pixels of its shrunk copy (odd)."""
    return odd(share * max(shape) / SHRINK)


def opened(small: np.ndarray, span: int) -> np.ndarray:
    """A shrunk image's opening by a square `span` pixels wide."""
    return cv2.morphologyEx(small, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (span, span)))


def background(bright_ink: np.ndarray, share: float) -> np.ndarray:
    """The local background level under bright ink: an opening wider than any stroke, computed small."""
    return grown_back(opened(shrunk(bright_ink), small_span(share, bright_ink.shape)), bright_ink.shape)


def reconstructed(marker: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Greyscale reconstruction by dilation: `marker` (at most `mask`) raised as far as `mask` allows wherever it
    connects, through `mask`, to something that high."""
    step = np.ones((3, 3), np.uint8)
    while True:
        grown = np.minimum(cv2.dilate(marker, step), mask)
        if np.array_equal(grown, marker):
            return grown
        marker = grown


def sheet_background(bright_ink: np.ndarray, share: float) -> np.ndarray:
    """The background level under bright ink on a photographed sheet: the opening `share` wide, except where it kept
    a stroke too thick for it (a marker's), where it is the median of a wider window. Where that median also cuts
    off a shadow's corner, the rest of the shadow brings the corner back."""
    small = shrunk(bright_ink)
    level = opened(small, small_span(share, bright_ink.shape))
    window = small_span(SHEET_MEDIAN_SPAN, bright_ink.shape)
    median = cv2.medianBlur(np.clip(small, 0, 255).astype(np.uint8), window)
    paper = median.astype(np.float32)
    kept = (level - paper > MIN_CONTRAST / 2).astype(np.uint8)
    _, labels, stats, _ = cv2.connectedComponentsWithStats(kept, connectivity=8)
    sizes = np.maximum(stats[1:, cv2.CC_STAT_WIDTH], stats[1:, cv2.CC_STAT_HEIGHT])
    strokes = np.isin(labels, 1 + np.flatnonzero(sizes < THICK_MARK * max(small.shape)))
    return grown_back(reconstructed(np.where(strokes, np.minimum(level, paper), level), level), bright_ink.shape)


def edge_step(level: np.ndarray, pale: np.ndarray) -> float:
    """How much brighter the pale side is right at its border than the other side right across it."""
    ring = np.ones((5, 5), np.uint8)
    region = pale.astype(np.uint8)
    inner = pale & ~cv2.erode(region, ring).astype(bool)
    outer = cv2.dilate(region, ring).astype(bool) & ~pale
    if not inner.any() or not outer.any():
        return 0.0
    return float(np.median(level[inner])) - float(np.median(level[outer]))


def border(image: np.ndarray) -> np.ndarray:
    """The pixels along the picture's four edges."""
    return np.concatenate([image[0], image[-1], image[1:-1, 0], image[1:-1, -1]])


def sheet_mask(gray: np.ndarray, chroma: np.ndarray | None) -> np.ndarray | None:
    """On a photo of a sheet on a table, the sheet (minus a margin at its edges); None when the paper fills the
    picture (nothing to leave out). The sheet is a large region once the ink is closed over: on a colourful picture
    the one without colour (paper on a coloured table), and failing that (paper with a colour of its own, a sticky
    note) the pale one."""
    height, width = gray.shape
    size = (max(1, width // SHRINK), max(1, height // SHRINK))
    small = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
    span = odd(SHEET_INK_SPAN * max(size))
    paper = cv2.morphologyEx(small, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (span, span)))
    level = np.clip(paper, 0, 255).astype(np.uint8)
    hull = None
    if chroma is not None:
        colour = cv2.resize(chroma, size, interpolation=cv2.INTER_AREA)
        if (colour >= SHEET_SATURATION).mean() > 0.1:
            # Colour tells paper from a table in a shadow too, where brightness does not.
            hull = coloured_sheet(colour < SHEET_SATURATION, size)
    hull = pale_sheet(level, size) if hull is None else hull
    if hull is None:
        return None
    # A photographed table has texture and the camera's noise, so its pixels vary; a surround of one exact grey is
    # a digital image's background (light strokes drawn on black), and what looked like a sheet is the strokes
    # closed over.
    table = small[~cv2.dilate(hull, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * span + 1,) * 2)).astype(bool)]
    if table.size and np.mean(table == np.median(table)) > FLAT_TABLE:
        return None
    whole = np.asarray(cv2.resize(hull, (width, height), interpolation=cv2.INTER_NEAREST))
    margin = odd(SHEET_MARGIN * max(height, width))
    return cv2.erode(whole, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (margin, margin))).astype(bool)


def coloured_sheet(region: np.ndarray, size: tuple[int, int]) -> np.ndarray | None:
    """The hull of the sheet that is `region` (told by its lack of colour), or None if it is no sheet."""
    return sheet_sized(*pale_hull(region, size)) if table_shows(region) else None


def pale_sheet(level: np.ndarray, size: tuple[int, int]) -> np.ndarray | None:
    """The hull of the sheet that is the pale side of Otsu's split of the ink-closed brightness `level`, or None."""
    threshold, _ = cv2.threshold(level, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    pale = level > threshold
    if pale.all() or not pale.any() or np.median(level[pale]) - np.median(level[~pale]) < SHEET_CONTRAST:
        return None  # the two sides of a gradient or a shadow on one sheet: no table to leave out
    if edge_step(level, pale) < SHEET_CONTRAST / 2:
        return None  # a smooth fall of the light, not the sharp edge of a sheet
    if not table_shows(pale):
        return None  # the rest is the ink (a large digit, a coloured pen)
    hull, area = pale_hull(pale, size)
    if area < MIN_SHEET:
        # A shadow across the sheet leaves only its lit part above the split. Its shaded part is on the bright side
        # of a second split of the rest, with any of the table as bright (then taken for paper too: the digit is on
        # the paper either way).
        lower, _ = cv2.threshold(level[~pale], 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
        shaded = level > lower
        if table_shows(shaded):
            hull, area = pale_hull(shaded, size)
    return sheet_sized(hull, area)


def table_shows(sheet: np.ndarray) -> bool:
    """Does what is not `sheet` show along SHEET_BORDER of the picture's edge, as a table around a sheet does?"""
    return bool((~border(sheet)).mean() >= SHEET_BORDER)


def sheet_sized(hull: np.ndarray | None, area: float) -> np.ndarray | None:
    """`hull` if it is a sheet's size: its pale part covers MIN_SHEET of the picture, and it leaves a tenth."""
    return hull if hull is not None and hull.mean() <= 0.9 and area >= MIN_SHEET else None


def pale_hull(pale: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray | None, float]:
    """The convex hull of the largest pale part (None if there is none) and that part's share of the picture.
    Pale parts of the table (a checked cloth's light squares, a photo's sky) touching the sheet would join it: an
    opening narrower than the sheet and wider than them cuts them off first."""
    cut = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (odd(SHEET_CUT * max(size)),) * 2)
    sheet = cv2.morphologyEx(pale.astype(np.uint8), cv2.MORPH_OPEN, cut)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(sheet, connectivity=8)
    if count < 2:
        return None, 0.0
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    hull = np.zeros(pale.shape, np.uint8)
    cv2.fillConvexPoly(hull, cv2.convexHull(cv2.findNonZero((labels == largest).astype(np.uint8))), 1)
    return hull, float(stats[largest, cv2.CC_STAT_AREA]) / pale.size


def within(inner: np.ndarray, outer: np.ndarray) -> np.ndarray:
    """[i, j]: does the bounding box of `inner` component i lie within that of `outer` component j? (rows of stats)"""
    x, y, w, h = (inner[:, i, None] for i in range(4))
    ox, oy, ow, oh = (outer[None, :, i] for i in range(4))
    return (x >= ox) & (y >= oy) & (x + w <= ox + ow) & (y + h <= oy + oh)


def along_the_edge(mark: np.ndarray, box: np.ndarray, sheet: np.ndarray) -> bool:
    """Does a mark off the sheet run along the sheet's edge, as the edge itself or the table just beside it does (a
    strip of it, a row of a pattern's squares): long and thin (EDGE_ASPECT, by its row of OpenCV's component stats),
    outside the sheet all, and half of it or more within EDGE_BAND of it? A digit written in a shadow that the
    sheet's found outline leaves out is off the sheet too, but mostly not that thin (a 1 can be), and it often
    reaches onto the sheet or lies further from it."""
    width, height = box[cv2.CC_STAT_WIDTH], box[cv2.CC_STAT_HEIGHT]
    if max(width, height) < EDGE_ASPECT * min(width, height):
        return False
    distance = ink_distance(~sheet)[mark]  # each pixel off the sheet: how far from it
    return bool(distance.min() > 0 and np.median(distance) <= EDGE_BAND * max(sheet.shape))


def in_a_pattern(stats: np.ndarray, mark: int, around: np.ndarray) -> bool:
    """Is `mark` (off the sheet) a piece of the table's pattern (a checked cloth's squares, a photo's details): are
    there TABLE_MARKS or more marks off the sheet `around` it (itself included), each at least TABLE_PIECE of its
    size (rows of OpenCV's component stats)? A digit in a shadow that the sheet's found outline leaves out stands
    alone on plain paper."""
    size = np.maximum(stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT])
    return int(np.count_nonzero(around & (size >= TABLE_PIECE * size[mark]))) >= TABLE_MARKS


def touches_the_edge(x: Any, y: Any, w: Any, h: Any, shape: tuple[int, ...]) -> Any:
    """Do the boxes (left, top, width, height; arrays or numbers) come within EDGE of the picture's edge?"""
    height, width = shape[:2]
    edge = EDGE * min(height, width)
    return (x <= edge) | (y <= edge) | (x + w >= width - edge) | (y + h >= height - edge)


def strongest_marks(mask: np.ndarray, signal: np.ndarray) -> np.ndarray:
    """The mask with only its MAX_MARKS strongest components (most ink, area times contrast): the rules that weigh
    marks against each other compare every pair, so a picture of noise with thousands of specks would cost time
    and memory in their square. The digit and its parts are never among the faintest specks."""
    count, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    if count - 1 <= MAX_MARKS:
        return mask
    strength = np.bincount(labels.ravel(), weights=signal.ravel(), minlength=count)[1:]
    strongest = 1 + np.argsort(strength, kind="stable")[-MAX_MARKS:]
    return np.isin(labels, strongest)


def digit_components(
    mask: np.ndarray,
    signal: np.ndarray,
    sheet: np.ndarray | None,
    lines: np.ndarray,
    printed: bool,
    captured: bool,
) -> np.ndarray:
    """The main component and those near it; specks, frames and border-touching junk dropped. The main component
    is the one with the most ink (area times contrast), counted less towards the picture's edges, where junk
    comes in. `lines` are the printed lines already taken out of `mask`; frames are looked for where the picture
    may have them (`printed`). Junk comes in at the edge of a picture `captured` by a camera or a scanner."""
    height, width = mask.shape
    mask = strongest_marks(mask, signal)
    mask, boxes = without_frames(mask) if printed else (mask, np.zeros(mask.shape, bool))
    closed_cells = cells(lines)
    boxes |= closed_cells
    count, labels, stats, centres = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if count < 2:
        return np.zeros(mask.shape, bool)
    strength = np.bincount(labels.ravel(), weights=signal.ravel(), minlength=count)
    stats = stats[1:]
    x, y, w, h, area = (stats[:, i] for i in range(5))
    touches = touches_the_edge(x, y, w, h, mask.shape)
    rows, cols = centres[1:, 1], centres[1:, 0]
    # Off-centre distance, 0 in the middle and 1 at an edge: the digit is what the picture was taken of.
    off_centre = np.maximum(np.abs(2 * rows / height - 1), np.abs(2 * cols / width - 1))
    # What a form's box holds is the answer, not the printed label beside it.
    boxed = boxes[rows.astype(int), cols.astype(int)]
    on_sheet = np.bincount(labels[sheet], minlength=count)[1:] if sheet is not None else area
    off_sheet = on_sheet < ON_SHEET_SHARE * area
    weight = (
        strength[1:]
        * (1 - CENTRE_PULL * off_centre)
        * np.where(off_sheet, OFF_SHEET, 1.0)
        * np.where(boxed, 4.0, 1.0)
        * ~frames(stats, mask.shape)[0]
    )
    text = in_text_row(stats)
    weight *= np.where(text, TEXT_WEIGHT, 1.0)
    # What a form's cell holds, or what stands under its label, is the answer. A cell the table's pattern closes
    # around a mark off the sheet is no form's.
    in_cell = closed_cells[rows.astype(int), cols.astype(int)] & ~off_sheet
    # Only a scan is taken for a form: a photo of a sheet has edges and shadows for lines, a drawing no print at all.
    on_the_lines = on_lines(stats, labels, lines) if sheet is None and printed else None
    # A comb's tick or what is left of a box's side is the form's: the digit only in a closed cell with nothing else
    # written in it (a 1 written in a box touches its lines as a tick does).
    tick = np.zeros(len(stats), bool) if on_the_lines is None else form_ticks(stats, on_the_lines, mask.shape)
    weight *= np.where(tick, TEXT_WEIGHT, 1.0)
    field = written_field(stats, weight, in_cell, lines, on_the_lines)
    weight *= np.where(field, 1.0, TEXT_WEIGHT)
    # A scanned form's label printed beside the field is the form's too, even where the scan runs its letters together,
    # and so is one printed above it, clear of its lines.
    label = np.zeros(len(stats), bool) if on_the_lines is None else labels_beside(stats, weight)
    weight *= np.where(label, TEXT_WEIGHT, 1.0)
    above = np.zeros(len(stats), bool) if on_the_lines is None else labels_above(stats, lines)
    weight *= np.where(above, TEXT_WEIGHT, 1.0)
    # A mark touching the picture's edge is the digit only when nothing else is there, and only a large one (a
    # drawing that fills its canvas; a small one is a shadow's or the sheet's corner), or any one in a picture that
    # no camera or scanner took (a drawing, drawn small near its canvas's edge).
    weight *= ~touches | (np.maximum(w, h) >= EDGE_MARK * min(height, width)) | (not captured)
    if not weight.any():
        return np.zeros(mask.shape, bool)
    # A speck within the box of a large mark at the edge is that mark's noise, not a rival to it: a blocky scan of a
    # digit that fills the picture to its edge has specks between its strokes.
    speck = np.maximum(w, h) < MIN_DIGIT * min(height, width)
    held = np.zeros(len(stats), bool)
    held[speck] = within(stats[speck], stats[touches & (weight > 0)]).any(axis=1)
    inside = np.where(touches | held, 0.0, weight)
    main = int(np.argmax(inside if inside.any() else weight))
    reach = NEAR * max(w[main], h[main])
    left, top = x[main] - reach, y[main] - reach
    right, bottom = x[main] + w[main] + reach, y[main] + h[main] + reach
    near = (x < right) & (x + w > left) & (y < bottom) & (y + h > top)
    if (
        sheet is not None
        and off_sheet[main]
        and (
            touches[main]
            or along_the_edge(labels == main + 1, stats[main], sheet)
            or in_a_pattern(stats, main, near & off_sheet)
        )
    ):
        # A blank sheet: what stands out is its own edge, or the table beside it or around it.
        return np.zeros(mask.shape, bool)
    if tick[main] and not in_cell[main]:
        return np.zeros(mask.shape, bool)  # a blank form: what stands out is a comb's tick (a 1 in a box is in a cell)
    if above[main]:
        return np.zeros(mask.shape, bool)  # a blank form: what stands out is the label printed above it
    keep = near & (weight >= MIN_PART * weight[main]) & ~(touches & ~touches[main])
    keep &= ~(text & ~text[main]) & ~(field[main] & ~field)
    keep &= ~(tick & ~tick[main]) & ~(label & ~label[main])
    return np.isin(labels, 1 + np.flatnonzero(keep))


def noise(small: np.ndarray, level: np.ndarray | None) -> float:
    """The sensor noise in contrast units: a robust spread of each pixel's difference from its neighbours (a
    textured table or a shadow's edge does not count, unlike a spread of the whole picture)."""
    detail = small - cv2.medianBlur(small.astype(np.float32), 3)
    sigma = 1.4826 * float(np.median(np.abs(detail)))
    paper = 255.0 if level is None else max(float(np.median(255.0 - level)), MIN_PAPER)
    return sigma * 255.0 / paper


def contrast(
    small: np.ndarray, sheet: np.ndarray | None, span: float | None = None, dark: bool | None = None
) -> tuple[np.ndarray, float]:
    """How far each pixel's ink stands out (bright ink on 0, 0-255) over a background opening `span` wide (a share
    of the picture's longer side; by default the one for a picture with or without a sheet), and the noise level in
    the same units. The ink is `dark` or light as given, or as the picture looks."""
    if dark is None:
        dark = sheet is not None or ink_is_dark(small)  # writing on a sheet of paper is dark
    bright_ink = 255.0 - small if dark else small
    if span is None:
        span = BACKGROUND_SPAN if sheet is None else SHEET_BACKGROUND_SPAN
    level = background(bright_ink, span) if sheet is None else sheet_background(bright_ink, span)
    signal = np.clip(bright_ink - level, 0, None)
    if dark:  # relative to the paper's local brightness (255 - level): a pen reads the same in a shadow
        signal *= 255.0 / np.maximum(255.0 - level, MIN_PAPER)
    return cv2.GaussianBlur(signal, (0, 0), 0.8), noise(small, level if dark else None)


def is_blob(found: np.ndarray) -> bool:
    """Is the found ink's main part one filled, convex patch much thicker than a pen's stroke (a cast shadow)?"""
    count, labels, stats, _ = cv2.connectedComponentsWithStats((found > BLOB_CORE).astype(np.uint8), connectivity=8)
    if count < 2:
        return False
    main = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    part = (labels == main).astype(np.uint8)
    hull = cv2.contourArea(cv2.convexHull(cv2.findNonZero(part)))
    solidity = stats[main, cv2.CC_STAT_AREA] / max(hull, 1.0)
    return thickness(part, stats[main]) > BLOB_THICKNESS and solidity > BLOB_SOLIDITY


def has_patch(found: np.ndarray) -> bool:
    """Does the found ink hold a patch much thicker than its pen's strokes (a cast shadow that joins the digit)?
    The pen's half width is the median distance to the background along the ink's ridges (the local maxima of that
    distance), where the strokes, being long, outnumber a patch."""
    core = (found > BLOB_CORE).astype(np.uint8)
    distance = ink_distance(core)
    ridges = (distance > 0) & (distance >= cv2.dilate(distance, np.ones((3, 3), np.uint8)))
    if not ridges.any():
        return False
    radius = PATCH_WIDTHS * float(np.median(distance[ridges]))
    # The opening by a disc of that radius, through distances (a large disc's morphology is slow): the disc fits
    # where the ink is that deep, and covers what lies within its radius of such a centre.
    centres = (distance < radius).astype(np.uint8)
    thick = ink_distance(centres) <= radius
    return int(np.count_nonzero(thick & core.astype(bool))) > PATCH_SHARE * int(core.sum())


def is_writing(found: np.ndarray) -> bool:
    """Is the found ink a pen's strokes: readable, with no blob or patch of a shadow in it?"""
    return is_readable(found) and not (is_blob(found) or has_patch(found))


def is_readable(found: np.ndarray) -> bool:
    """Is the found ink large enough to read (MIN_DIGIT)? The narrow opening can leave a speck of a thick digit's
    strokes, and removing a ruled page's lines one by one a speck of them."""
    rows, cols = np.nonzero(found)
    return max(np.ptp(rows), np.ptp(cols)) + 1 >= MIN_DIGIT * min(found.shape)


def find_digit(gray: np.ndarray, chroma: np.ndarray | None = None, drawing: bool = False) -> np.ndarray | None:
    """Bright ink on 0 (float, 0-255) holding only the digit's strokes, at working size (of the picture, or of the
    picture inside a margin: `digit_of_a_crop`); None for a blank image.

    `gray` is luminance 0-255; `chroma` (optional, same size) is each pixel's colour saturation, which tells paper
    from a coloured table. A `drawing` (a drawing app's export) has no sheet or table in it to look for."""
    sheetless = max(gray.shape) < SHEET_PHOTO_SIDE
    if max(gray.shape) < CROP_SIDE and marks_span(gray) and (drawing or not has_printed_lines(gray)):
        cropped = digit_of_a_crop(gray, chroma, drawing, sheetless)
        if cropped is not None:
            return cropped
    return digit_in(gray, chroma, drawing, sheetless=sheetless)


def has_printed_lines(gray: np.ndarray) -> bool:
    """Does the picture hold a form's printed lines? A crop of a form's field has its box, comb or baseline running
    across it as a digit cropped close has its strokes, and inside a margin its label and the lines' stubs would
    pass for that digit's: it is looked at as it is."""
    small, _ = working_copy(gray, None)
    signal, spread = contrast(small, None)
    return bool(printed_lines(signal > ink_threshold(spread), scan=True).any())


def ink_threshold(spread: float) -> float:
    """The contrast ink stands above the background: clear of the noise `spread`, and at least MIN_CONTRAST."""
    return max(NOISE_SIGMAS * spread, MIN_CONTRAST)


def marks_span(gray: np.ndarray) -> bool:
    """Do the marks (pixels half the least contrast of ink off the border's level) span CROP_SPAN of the picture's
    height or width? A digit found spans little more than they do (its faint rim), so a picture where they do not
    is taken for no crop to its digit and is spared the look inside a margin."""
    marked = np.abs(gray - float(np.median(border(gray)))) > MIN_CONTRAST / 2
    return spans_most(marked, *gray.shape)


def spans_most(mask: np.ndarray, height: float, width: float) -> bool:
    """Does `mask` reach across CROP_SPAN of `height` or of `width` (in its own pixels)?"""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if not rows.size:
        return False
    return bool(np.ptp(rows) + 1 >= CROP_SPAN * height or np.ptp(cols) + 1 >= CROP_SPAN * width)


def with_margin(image: np.ndarray, share: float) -> np.ndarray:
    """`image` inside a margin `share` of its longer side wide, at the median level of its border: the background,
    which a digit cropped close touches only here and there."""
    pad = max(1, round(share * max(image.shape)))
    level = float(np.median(border(image)))
    return cv2.copyMakeBorder(image.astype(np.float32), pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=level)


def digit_of_a_crop(
    gray: np.ndarray, chroma: np.ndarray | None, drawing: bool, sheetless: bool = False
) -> np.ndarray | None:
    """The digit of a picture cropped close to it, or None if the picture is not such a crop. Cropped close, the
    digit's strokes run along the picture's edges, where the table and the sheet's edge are looked for: so it is
    looked for with a margin of the picture's own background around it, and taken if it spans most of the
    picture's height or width, as only a digit the picture was cropped to does."""
    framed = with_margin(gray, CROP_MARGIN)
    colour = None if chroma is None else with_margin(chroma, CROP_MARGIN)
    found = digit_in(framed, colour, drawing, cropped=True, sheetless=sheetless)
    if found is None:
        return None
    scale = found.shape[0] / framed.shape[0]  # from the framed picture to the working copy
    return found if spans_most(found > 0, gray.shape[0] * scale, gray.shape[1] * scale) else None


def digit_in(
    gray: np.ndarray, chroma: np.ndarray | None, drawing: bool, cropped: bool = False, sheetless: bool = False
) -> np.ndarray | None:
    """`find_digit` on the picture as it is, or as `cropped` close to its digit and framed by its own background; a
    drawing, or a picture too small to be a photo of a sheet (`sheetless`), has no sheet to look for."""
    small, chroma = working_copy(gray, chroma)
    sheet = None if drawing or sheetless else sheet_mask(small, chroma)
    printed = not drawing  # only paper has printed lines and frames
    found = strokes(small, sheet, None, printed)
    if found is None and sheet is None and printed and holds_a_shadow(small):
        # A dim band along the picture's edge (a shadow, light falling off), narrower than the wide opening, comes
        # out as ink and swallows a form's line in it: the box is open, and a digit standing on its other line passes
        # for a blank form's tick. The narrow opening leaves the band as background; what it finds at the picture's
        # edge is the table or the page's edge.
        retry = strokes(small, None, SHEET_BACKGROUND_SPAN, printed)
        if retry is not None and is_writing(retry) and not at_the_edge(retry):
            return retry
    if found is None:
        return None
    thick = is_blob(found) or has_patch(found)
    if sheet is not None and (thick or (cropped and not ink_is_dark(small))):
        # Thick light strokes on a dark ground, closed over, can pass for a sheet on a table, and the ground between
        # them for writing far thicker than a pen's. A light digit cropped close, framed by its dark ground, has no
        # sheet in it to pass for: what does is its strokes, and what passed for writing is the noise on them. Read
        # as light ink, they are what passed for the sheet. A dark ground's lit side can pass for a sheet too (chalk
        # on a board under uneven light): then the light strokes need not span it.
        light = strokes(small, None, None, printed, dark=False)
        if light is None or not is_writing(light):
            return found
        return light if spans_the_sheet(light, sheet) or (thick and is_dark_ground(small, sheet)) else found
    if not thick:
        if sheet is not None and is_dark_ground(small, sheet):
            # Chalk on a board whose lit side passed for a sheet: what was found on it as dark writing is the
            # ground between the strokes, or its grain.
            light = strokes(small, None, None, printed, dark=False)
            if light is not None and is_writing(light) and is_chalk(small, light):
                return light
        return found
    # A shadow narrower than the wide opening was found instead of the digit, or with it; a narrow opening leaves it
    # as background, unless the digit's own strokes are as thick as a shadow (then they come out as a blob or a patch
    # too, or all but a speck of them fall below the narrow opening's background, or what it leaves out is as dark as
    # what it keeps).
    retry = strokes(small, None, SHEET_BACKGROUND_SPAN, printed)
    return retry if retry is not None and is_found_without_a_shadow(small, found, retry) else found


def holds_a_shadow(small: np.ndarray) -> bool:
    """Does the wide opening (no sheet) take a patch far thicker than a pen's strokes for ink (`has_patch`)?"""
    signal, spread = contrast(small, None)
    return has_patch((signal > ink_threshold(spread)).astype(np.float32) * 255.0)


def at_the_edge(found: np.ndarray) -> bool:
    """Does the found ink's bounding box touch the picture's edge (`touches_the_edge`)?"""
    left, top, width, height = cv2.boundingRect((found > 0).astype(np.uint8))
    return bool(touches_the_edge(left, top, width, height, found.shape))


def is_dark_ground(small: np.ndarray, sheet: np.ndarray) -> bool:
    """Is `sheet` the lit side of a dark ground with light writing on it (DIM_PAPER)?"""
    ground = float(np.median(small[sheet]))
    if ground >= DIM_PAPER:
        return False
    brightest = float(np.percentile(small, BRIGHTEST))
    if ground >= LIGHT_WRITING * brightest:
        return False
    return float(np.mean(border(small) > (ground + brightest) / 2)) < BRIGHT_BORDER


def is_chalk(small: np.ndarray, light: np.ndarray) -> bool:
    """Is `light` (light ink found on a dark ground) written there, as chalk is: clear of the picture's edge and
    standing LIGHT_STROKES above the ground (its strokes' brightest tenth)?"""
    if at_the_edge(light):
        return False
    signal, _ = contrast(small, None, None, dark=False)
    return float(np.percentile(signal[light > 0], 90)) >= LIGHT_STROKES


def spans_the_sheet(light: np.ndarray, sheet: np.ndarray) -> bool:
    """Is `light` (the picture read as light ink) the strokes that passed for `sheet`, spanning its height and width
    (light ink found on a real sheet's photo is a part of it: its lit side, its edge)?"""
    rows, cols = np.nonzero(light)
    sheet_rows, sheet_cols = np.nonzero(sheet)
    return bool(
        np.ptp(rows) >= LIGHT_SHEET_SPAN * np.ptp(sheet_rows) and np.ptp(cols) >= LIGHT_SHEET_SPAN * np.ptp(sheet_cols)
    )


def is_found_without_a_shadow(small: np.ndarray, found: np.ndarray, kept: np.ndarray) -> bool:
    """Is `kept` (the narrow opening's ink) the digit of `found` without a shadow? It is readable, holds no blob
    or patch itself, and the ink of `found` it leaves out is fainter than its own (SHADOW_SHARE, darkest tenths,
    over the level of the picture outside `found`)."""
    if not is_writing(kept):
        return False
    left_out = (found > 0) & (kept == 0)
    if not left_out.any():
        return True
    ink = 255.0 - small if ink_is_dark(small) else small
    ink = ink - float(np.median(ink[found == 0])) if (found == 0).any() else ink
    darkest_left_out = float(np.percentile(ink[left_out], 90))
    return darkest_left_out < SHADOW_SHARE * float(np.percentile(ink[kept > 0], 90))


def ruling_level(signal: np.ndarray, mask: np.ndarray, lines: np.ndarray) -> float | None:
    """The contrast above which a ruled or squared page's printed lines drop out (RULING_MARGIN over theirs), when
    what is written off them stands RULING_GAP times higher; None for a page without such a ruling."""
    if not (is_ruled(lines) and (mask & ~lines).any()):
        return None
    printed = float(np.percentile(signal[lines], 90))
    written = float(np.percentile(signal[mask & ~lines], 99))
    return RULING_MARGIN * printed if written > RULING_GAP * printed else None


def is_left_of_the_ruling(digit: np.ndarray, signal: np.ndarray, lines: np.ndarray, threshold: float) -> bool:
    """Is `digit` what removing a ruled or squared page's `lines` one by one left of them? On a ruled page a speck
    (a crossing, a broken piece), on a squared page marks no stronger than its lines (a pen or a pencil writes
    darker than a notebook's printed grid). A squared page printed so faint that few of its lines pass the ink's
    bar `threshold` is looked at again for them below it, when the marks found are thin and barely pass it too."""
    strength = float(np.percentile(signal[digit], 90))
    if lines.any():
        if is_ruled(lines) and not is_readable(digit):
            return True
        if is_squared(lines) and strength <= float(np.percentile(signal[lines], 90)):
            return True
    if strength >= FAINT_MARK * threshold or stroke_width(digit) > FAINT_LINE_WIDTH:
        return False
    faint = printed_lines(signal > FAINT_RULING * threshold, scan=True)
    return is_squared(faint) and strength <= RULING_MARGIN * float(np.percentile(signal[faint], 90))


def ink_and_lines(
    signal: np.ndarray, threshold: float, sheet: np.ndarray | None, printed: bool
) -> tuple[np.ndarray, np.ndarray]:
    """The ink above `threshold` without the printed lines in it, and those lines (none where there is no paper
    to print on: see `strokes`)."""
    mask = signal > threshold
    lines = printed_lines(mask, scan=sheet is None) if printed else np.zeros(mask.shape, bool)
    if printed and sheet is None and not lines.any():
        lines = printed_lines(mask, scan=True, dashed=True)  # a faint or bilevel scan's broken lines
    return mask & ~lines, lines


def faint_pen_threshold(signal: np.ndarray, digit: np.ndarray, threshold: float) -> float | None:
    """A lower bar for the ink when the `digit` found at `threshold` is a faint pen's (FAINT_STROKES) and the
    paper is quiet enough to show the rest of its strokes; None otherwise."""
    if not digit.any() or float(np.percentile(signal[digit], 90)) >= FAINT_STROKES * threshold:
        return None
    lower = max(PAPER_TEXTURE * float(np.percentile(signal, 90)), FAINT_CONTRAST)
    return lower if lower < threshold else None


def strokes(
    small: np.ndarray, sheet: np.ndarray | None, span: float | None, printed: bool, dark: bool | None = None
) -> np.ndarray | None:
    """`find_digit` on the working copy, with the background opening `span` wide and the ink `dark` or not (see
    `contrast`). Only paper may have `printed` lines and frames: a drawing app's export has none, and a long straight
    stroke in it is the digit's."""
    signal, spread = contrast(small, sheet, span, dark)
    if float(signal.max()) < MIN_CONTRAST:
        # A blank page, or a photo of a blank sheet: looked at again without the sheet, the table around it would
        # stand out as a large dark mark.
        return None
    threshold = ink_threshold(spread)
    mask, lines = ink_and_lines(signal, threshold, sheet, printed)
    ruling = ruling_level(signal, mask, lines)
    if ruling is not None:
        # A notebook's ruled or squared page printed fainter than the writing: its lines drop out below the bar,
        # where removing them one by one would cut the digit's strokes along them or take a 1 for one of them.
        threshold = ruling
        mask, lines = ink_and_lines(signal, threshold, sheet, printed)
    # A picture without noise (a drawing app's export, a digital image) came from no camera or scanner.
    captured = printed and spread > 0
    digit = digit_components(mask, signal, sheet, lines, printed, captured)
    lower = faint_pen_threshold(signal, digit, threshold) if sheet is None and printed and not lines.any() else None
    if lower is not None:
        threshold = lower
        mask, lines = ink_and_lines(signal, threshold, sheet, printed)
        digit = digit_components(mask, signal, sheet, lines, printed, captured)
    if not digit.any():
        return None
    if sheet is None and printed and is_left_of_the_ruling(digit, signal, lines, threshold):
        return None  # a blank ruled or squared page
    # The digit's own contrast sets the bar: fainter ink around its strokes counts (a blocky or faded scan's weak
    # parts), fainter marks elsewhere do not.
    top = float(np.percentile(signal[digit], STROKE_CORE))
    around = odd(AROUND * max(digit.shape))
    near = cv2.dilate(digit.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (around, around)))
    line_ink = cv2.dilate(lines.astype(np.uint8), np.ones((3, 3), np.uint8))
    keep = near.astype(bool) & ~line_ink.astype(bool)
    floor = max(threshold, INK_SHARE * top) * 0.5
    found = np.clip((signal - floor) / max(top - floor, 1e-6), 0, 1) * 255.0 * keep
    return found if found.any() else None  # the strokes were all printed lines
