"""What a form prints around what was written, found in the digit finder's thresholded ink mask: ruled lines, boxes
and combs (`printed_lines`), a ruled or squared page (`is_ruled`), frames around the digit (`without_frames`), cells
the lines close (`cells`), ticks and stubs of sides left on the lines (`form_ticks`), printed words and labels
(`in_text_row`, `printed_labels`, `labels_beside`, `labels_above`, `caption`) and the field written in
(`written_field`). Sizes are shares of the picture; app.digit_finding weighs the marks with them."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import cv2
import numpy as np

from app.ink_masks import ink_distance, odd, stroke_width

LINE_SPAN = 0.3  # printed lines are at least this share of the picture's shorter side long
LINE_GAP = 3  # pixels of paper a printed line's ink is joined across (a scan's speck of dust, a worn spot)
# A thin printed line that a faint or bilevel scan breaks into dashes has gaps up to DASH_GAP of the picture's longer
# side between them, and the ink is at least DASHES pieces. Such lines are looked for only where no unbroken line is
# found, since a digit's strokes line up across such gaps too, and only in ink of that many pieces, since the second
# search would cost every plain page's scan its time.
DASH_GAP = 0.03
DASHES = 8
LINE_TILT = 15  # degrees off horizontal or vertical that a printed line may lie (skew, perspective)
# A printed line is at least this many times as long as it is thick: a pen's stroke that long is thicker, or bends.
LINE_ASPECT = 16
# A box's side printed bold is at least this many times as long as it is thick, when four such sides close a
# rectangle (`box_sides`), and so is a field's baseline that something is written on (`baselines`): a pen draws no
# four straight strokes meeting at right angles, nor a straight one sticking out on both sides of the others.
BOX_SIDE_ASPECT = 8
MAX_RUNS = 8  # the longest lines each way a picture's boxes are looked for among (a form's boxes have fewer)
STRAIGHT_RUN = 2  # a bold line's ink runs straight along it for this many of its widths (a stroke touching it, less)
# A field's baseline sticks out clear of what is written on it by this share of its length at each end, and what
# is written on it is at least BASELINE_WRITTEN of its length tall.
BASELINE_END = 0.1
BASELINE_WRITTEN = 0.25
# A field's baseline is printed thinner than the pen writes: at most this share of its strokes' width.
BASELINE_PEN = 0.9
STROKE_END = 0.2  # a digit's straight stroke across meets another within this share of its length of an end
LONE_LINE_SPAN = 0.8  # a notebook's margin or ruled line spans most of the page; a pen's stroke, a digit's size
# A segment's thickness is the largest distance to the background within this many pen widths across it: a segment
# found off a line's middle (or along a thick stroke's edge) still takes in the whole line's (stroke's) thickness.
RIDGE = 2.0
SIDE_SPAN = 0.08  # a box's side or a comb's tick is at least this share of the picture's shorter side long
SIDE_TILT = 6  # degrees off the axis a printed side may lie: a scan's skew, not a pen's slant
SIDE_WIDTH = 1.5  # a printed side is printed with the line it stands on: at most this much thicker
# A mark that might be a printed frame (a comb, a box the digit touches) covers less than this share of its bounding
# box (a small box printed thick covers a third of it); a digit's strokes, even a thin 0's, cover more than that.
FRAME_EXTENT = 0.4
# A mark around another sizeable one is a printed frame if it covers less than this share of its bounding box: a
# small scan's box, enlarged, has lines a tenth of its side thick and covers more than FRAME_EXTENT, while a digit's
# strokes hold nothing as large as a box holds.
HOLLOW_EXTENT = 0.6
FRAME_CONTENT = 0.2  # what a box holds has at least this share of the box's own ink
FRAME_SHARE = 0.5  # a frame the digit touches is mostly straight sides
FRAME_SIDES = 3  # a frame the digit touches has at least this many separate straight sides
COMB_SIDES = 2  # a comb under the digit has this many (its base and a tick: a short tick can go unseen)
FRAME_BORDER = 0.15  # a frame's side runs along its bounding box's edge, within this share of its size
FRAME_SIDE = 0.7  # a frame's side runs at least this share of the frame's width (height)
FRAME_SPAN = 0.3  # a frame the digit touches, or a lone cell's comb, spans this share of the picture or more
# A form's printed label ("Qty", "Month") is a row of letters: a mark in a chain of at least TEXT_ROW others, each
# beside the next (a gap under TEXT_GAP of the taller one's height), on its line (centres within TEXT_LINE of that
# height) and of its height (within a factor of TEXT_HEIGHTS), is a letter, and counts TEXT_WEIGHT as much as a mark
# on its own.
TEXT_ROW = 2
TEXT_GAP = 0.8
TEXT_LINE = 0.4
TEXT_HEIGHTS = 1.6
TEXT_WEIGHT = 0.1
CELL_GAP = 0.02  # printed lines stopping this share of the picture's longer side short of each other close a cell
SIZEABLE = 0.1  # a mark counting at least this share as much as the strongest one is sizeable
# A form's printed label beside its field, its letters run together into one mark, is at least LABEL_ASPECT times
# as wide as it is tall; it lies wholly left of what was written, clear of it by LABEL_CLEAR of its height, and
# within its rows (LABEL_ROWS of its height over or under): a figure's detached stroke lies closer, a digit's
# broken piece reaches past its rows.
LABEL_ASPECT = 1.5
LABEL_CLEAR = 0.2
LABEL_ROWS = 0.1
# A form's printed label stands above what was written: clear paper at least LABEL_GAP of the label's height under
# it, then a sizeable mark at least LABEL_HEIGHT of its height (the pieces of a broken digit have no such gap).
LABEL_GAP = 0.2
LABEL_HEIGHT = 0.5
# On a scan without a form's lines (a comb too faint to find, no box) a heading stands out by place and distance:
# the first row of sizeable marks, ending in the top CAPTION_ZONE of the picture, with clear paper under it at least
# as tall as the strongest mark below, which is at least as tall as the heading's marks. A digit's detached top (a
# 5's flag, a faint 2's arc) is closer to its body than the body is tall.
CAPTION_ZONE = 1 / 3
RULED_LINES = 4  # a ruled or squared page's lines: at least this many, one above the other (side by side)
TICK_ASPECT = 2.5  # a mark on a scan's printed lines this many times as long as it is wide, or short, is the form's


Segment = tuple[int, int, int, int, bool, float]  # end points, horizontal, width


def axis_segments(
    binary: np.ndarray, length: int, tilt: float, votes: float = 0.5, gap: int = LINE_GAP
) -> list[tuple[int, int, int, int, bool]]:
    """Straight segments of the ink at least `length` long, within `tilt` degrees of horizontal or vertical (a
    probabilistic Hough transform, whose accumulator needs `votes` times `length` points on a line, and joins points
    up to `gap` pixels apart): their end points, and whether each is horizontal."""
    threshold = max(4, int(votes * length))
    segments = cv2.HoughLinesP(binary, 1, np.pi / 360, threshold, minLineLength=length, maxLineGap=gap)
    found = []
    for x1, y1, x2, y2 in segments[:, 0] if segments is not None else ():
        x1, y1, x2, y2 = int(x1), int(y1), int(x2), int(y2)
        if off_axis(x1, y1, x2, y2) <= tilt:
            found.append((x1, y1, x2, y2, abs(y2 - y1) < abs(x2 - x1)))
    return found


def off_axis(x1: int, y1: int, x2: int, y2: int) -> float:
    """Degrees a segment lies off the nearer of horizontal and vertical."""
    angle = float(np.degrees(np.arctan2(abs(y2 - y1), abs(x2 - x1))))
    return min(angle, 90 - angle)


def along(x1: int, y1: int, x2: int, y2: int) -> tuple[np.ndarray, np.ndarray]:
    """The rows and columns of the pixels on a segment, from its first end to its second."""
    count = max(abs(x2 - x1), abs(y2 - y1)) + 1
    return np.linspace(y1, y2, count).round().astype(int), np.linspace(x1, x2, count).round().astype(int)


def segment_width(ridge: np.ndarray, x1: int, y1: int, x2: int, y2: int) -> float:
    """The ink's typical thickness along a segment: twice the median of `ridge` (the distance to the background,
    taken at its largest across the segment) along it."""
    return 2.0 * float(np.median(ridge[along(x1, y1, x2, y2)]))


def printed_lines(mask: np.ndarray, scan: bool, dashed: bool = False) -> np.ndarray:
    """Ruled lines, form boxes and combs: the ink of long straight segments near horizontal or vertical (skew and
    perspective are allowed) far longer than they are thick, or printed bold and closing a box (`box_sides`) or under
    what is written (`baselines`), and of the straight sides standing on them (a box's sides, a comb's ticks) printed
    about as thick as they are. Where a stroke crosses a line, the ink on both sides of it continues across and the
    crossing stays ink. On a `scan`, a lone upright line is a pen's stroke (`is_a_lone_line`), and so are a lone line
    across that ends where the digit's other strokes do (`ends_a_stroke`) and two lines that cross (`cross_each_other`);
    on a photo of a sheet such lines are the sheet's edge or a shadow's, and go. `dashed` lines are looked for
    across gaps of DASH_GAP too, in ink of DASHES pieces or more."""
    binary = mask.astype(np.uint8)
    if dashed and cv2.connectedComponents(binary, connectivity=8)[0] - 1 < DASHES:
        return np.zeros(mask.shape, bool)
    distance = ink_distance(binary)
    pen = stroke_width(mask)
    across = odd(RIDGE * pen)
    ridges = {
        True: cv2.dilate(distance, np.ones((across, 1), np.uint8)),
        False: cv2.dilate(distance, np.ones((1, across), np.uint8)),
    }
    shorter = min(mask.shape)
    gap = max(LINE_GAP, int(DASH_GAP * max(mask.shape))) if dashed else LINE_GAP
    drawn = {True: np.zeros_like(binary), False: np.zeros_like(binary)}  # horizontal, vertical lines
    widths: list[float] = []
    stout: list[Segment] = []
    for x1, y1, x2, y2, horizontal in axis_segments(binary, max(8, int(LINE_SPAN * shorter)), LINE_TILT, gap=gap):
        width = segment_width(ridges[horizontal], x1, y1, x2, y2)
        length = np.hypot(x2 - x1, y2 - y1)
        if length >= LINE_ASPECT * width:
            draw_line(drawn[horizontal], x1, y1, x2, y2, width)
            widths.append(width)
        elif length >= BOX_SIDE_ASPECT * width and off_axis(x1, y1, x2, y2) <= SIDE_TILT:
            stout.append((x1, y1, x2, y2, horizontal, width))
    bold = {True: np.zeros_like(binary), False: np.zeros_like(binary)}
    for x1, y1, x2, y2, horizontal, width in box_sides(stout) + baselines(binary, stout, pen):
        draw_straight(bold[horizontal], binary, (x1, y1, x2, y2, horizontal, width))
        widths.append(width)
    drawn = {h: drawn[h] | bold[h] for h in drawn}
    if scan and is_a_lone_line(drawn[False], drawn[True], mask.shape[0]):
        drawn[False] = np.zeros_like(binary)  # a pen's stroke: a 1, a 4's stem
    if scan and cross_each_other(drawn[True], drawn[False], mask.shape):
        return np.zeros(mask.shape, bool)  # a pen's strokes: a 4's bar and stem
    if not (drawn[True].any() or drawn[False].any()):
        return np.zeros(mask.shape, bool)
    line_width = float(np.median(widths))
    long_lines = {h: cv2.dilate(drawn[h], np.ones((3, 3), np.uint8)).astype(bool) for h in drawn}
    bold_lines = {
        h: cv2.dilate(bold[h], np.ones((3, 3), np.uint8)).astype(bool) if bold[h].any() else None for h in bold
    }
    side = max(8, int(SIDE_SPAN * shorter))
    for x1, y1, x2, y2, horizontal in axis_segments(binary, side, SIDE_TILT):
        width = segment_width(ridges[horizontal], x1, y1, x2, y2)
        if (
            width <= SIDE_WIDTH * line_width
            and stands_on(long_lines[not horizontal], x1, y1, x2, y2)
            and not lies_along(bold_lines[horizontal], x1, y1, x2, y2)  # a bold line's own segment, drawn already
        ):
            draw_line(drawn[horizontal], x1, y1, x2, y2, width)
    # The probabilistic transform walks along the first angle whose count passes its threshold: with a low one, a
    # thick side's pixels can start a slanted walk that ends short and uses them up, and the side goes unfound. A
    # second pass over the ink not yet drawn, with a threshold of the whole length, finds it; it must run from one
    # line to another (a box's side), since it also finds more of a digit's own straight strokes.
    unfound = binary & (1 - (drawn[True] | drawn[False]))
    ends = {h: cv2.dilate(drawn[h], np.ones((5, 5), np.uint8)).astype(bool) for h in drawn}
    for x1, y1, x2, y2, horizontal in axis_segments(unfound, side, SIDE_TILT, votes=1.0):
        width = segment_width(ridges[horizontal], x1, y1, x2, y2)
        if width <= SIDE_WIDTH * line_width and spans_between(ends[not horizontal], x1, y1, x2, y2):
            draw_line(drawn[horizontal], x1, y1, x2, y2, width)
    if scan and is_a_lone_line(drawn[True], drawn[False], mask.shape[1]) and ends_a_stroke(drawn[True], binary):
        return np.zeros(mask.shape, bool)  # a digit's stroke: a 7's bar, a 2's base
    lines = (drawn[True] | drawn[False]) & binary
    rest = binary & (1 - lines)
    reach = odd(2 * max(widths) + 5)  # across the widest line drawn, as drawn
    crossed = drawn[True] & closed(rest, (1, reach)) | drawn[False] & closed(rest, (reach, 1))
    return (lines & (1 - crossed)).astype(bool)


def baselines(binary: np.ndarray, segments: list[Segment], pen: float) -> list[Segment]:
    """Those of `segments` that lie across, thinner than the `pen`'s strokes (BASELINE_PEN), with something written
    on them (`written_on`): a form field's baseline. A digit's own straight stroke is as thick as the rest of it."""
    return [s for s in segments if s[4] and s[5] < BASELINE_PEN * pen and written_on(binary, *s[:4])]


def written_on(binary: np.ndarray, x1: int, y1: int, x2: int, y2: int) -> bool:
    """Does ink stand over the middle of a horizontal segment, reaching BASELINE_WRITTEN of its length above the
    line it lies on (looked for within half its length), while the line's ends stick out clear (BASELINE_END of its
    length)? A field's baseline is longer than what is written on it; a digit's own straight strokes end where
    others start (a 2's base at its diagonal, a 4's bar at its arm), or have little or nothing over them (a 5's
    flag, a 7's bar). The line is the rows of ink running straight along the segment for a quarter of its length."""
    left, right = sorted((x1, x2))
    length = right - left
    top = max(0, int(min(y1, y2) - length / 2))
    window = binary[top : max(y1, y2) + 1, left : right + 1]
    straight = np.asarray(opened(window, (odd(length / 4), 1)).any(axis=1))
    line_top = len(straight) - 1  # the first row of the line's run of straight rows, up from the segment
    while line_top > 0 and straight[line_top - 1]:
        line_top -= 1
    over = window[: max(0, line_top - 1)]
    above = np.asarray(over.any(axis=0))
    rows = np.flatnonzero(over.any(axis=1))
    end = max(1, int(BASELINE_END * length))
    tall = rows.size > 0 and len(over) - rows[0] >= BASELINE_WRITTEN * length
    return bool(tall and above[end:-end].any() and not above[:end].any() and not above[-end:].any())


def box_sides(segments: list[Segment]) -> list[Segment]:
    """Those of `segments` that close a rectangle with others: two lines across and two upright, each running from
    one side to the other across it (short of it by at most FRAME_BORDER of the rectangle's size, as a rounded
    corner leaves). Segments along one thick line are one line."""
    kept: list[Segment] = []
    across, upright = printed_runs([s for s in segments if s[4]]), printed_runs([s for s in segments if not s[4]])
    for top, bottom in itertools.combinations(across, 2):
        for left, right in itertools.combinations(upright, 2):
            low_x, high_x = sorted((left.position, right.position))
            low_y, high_y = sorted((top.position, bottom.position))
            slack_x, slack_y = FRAME_BORDER * (high_x - low_x), FRAME_BORDER * (high_y - low_y)
            thickest = max(run.width for run in (top, bottom, left, right))
            if min(high_x - low_x, high_y - low_y) >= 4 * thickest and all(
                run.start <= low + slack and run.end >= high - slack
                for run, low, high, slack in (
                    (top, low_x, high_x, slack_x),
                    (bottom, low_x, high_x, slack_x),
                    (left, low_y, high_y, slack_y),
                    (right, low_y, high_y, slack_y),
                )
            ):
                kept += [top.side(low_x, high_x), bottom.side(low_x, high_x)]
                kept += [left.side(low_y, high_y), right.side(low_y, high_y)]
    return kept


@dataclass
class Run:
    """Segments along one printed line: where it lies across, where it starts and ends along, how thick it is."""

    position: float
    start: float
    end: float
    width: float
    segments: list[Segment]

    @property
    def fit(self) -> tuple[float, float]:
        """The line through its segments' ends (least squares): where it lies across at 0 along, and its slope
        (down per step right for a line across, right per step down for an upright one). Along a bold line the
        segments also run slantwise from one edge to the other, each turned further than the line."""
        ends = np.array([(s[0], s[1]) for s in self.segments] + [(s[2], s[3]) for s in self.segments], float)
        along_it, across_it = (ends[:, 0], ends[:, 1]) if self.segments[0][4] else (ends[:, 1], ends[:, 0])
        if np.ptp(along_it) == 0:
            return float(across_it.mean()), 0.0
        slope, offset = np.polyfit(along_it, across_it, 1)
        return float(offset), float(slope)

    def side(self, low: float, high: float) -> Segment:
        """The line as a box's side from `low` to `high` along it (`fit`): reaching the box's corners, which a
        blurred or rounded corner leaves its segments short of."""
        offset, slope = self.fit
        start, end = offset + slope * low, offset + slope * high
        if self.segments[0][4]:
            return (round(low), round(start), round(high), round(end), True, self.width)
        return (round(start), round(low), round(end), round(high), False, self.width)


def printed_runs(segments: list[Segment]) -> list[Run]:
    """`segments` (all across, or all upright) gathered into lines, the MAX_RUNS longest: a segment within half a
    line's width of its first segment's position is on the same line (a stroke beside a bold line is another)."""
    runs: list[Run] = []
    for segment in sorted(segments, key=lambda s: (s[1] + s[3]) if s[4] else (s[0] + s[2])):
        x1, y1, x2, y2, horizontal, width = segment
        position, start, end = (
            ((y1 + y2) / 2, min(x1, x2), max(x1, x2)) if horizontal else ((x1 + x2) / 2, min(y1, y2), max(y1, y2))
        )
        if runs and position - runs[-1].position <= max(width, runs[-1].width) / 2:
            run = runs[-1]
            run.start, run.end, run.width = min(run.start, start), max(run.end, end), max(run.width, width)
            run.segments.append(segment)
        else:
            runs.append(Run(position, start, end, width, [segment]))
    return sorted(runs, key=lambda run: run.end - run.start)[-MAX_RUNS:]


def is_ruled(lines: np.ndarray) -> bool:
    """Do printed lines run across the page RULED_LINES or more one above the other, or side by side (a ruled or
    squared page, or a form's row of four or more boxes)? Counted as the runs of line that each column (row)
    crosses, at the median column (row): a page turned a little still has each of its lines crossed once."""
    return max(ruled_lines(lines)) >= RULED_LINES


def is_squared(lines: np.ndarray) -> bool:
    """Do printed lines run across the page RULED_LINES or more one above the other and side by side (a squared
    page: a row of form boxes has only its top and bottom lines one above the other)?"""
    return min(ruled_lines(lines)) >= RULED_LINES


def ruled_lines(lines: np.ndarray) -> tuple[float, float]:
    """How many lines the median column crosses, and the median row."""
    marked = lines.astype(np.int8)
    down = np.count_nonzero(np.diff(marked, axis=0) == 1, axis=0) + marked[0]
    across = np.count_nonzero(np.diff(marked, axis=1) == 1, axis=1) + marked[:, 0]
    return float(np.median(down)), float(np.median(across))


def lone_line_box(lines: np.ndarray, extent: int) -> np.ndarray | None:
    """The bounding box (x, y, width, height) of `lines` (the lines drawn one way) when they are one line, shorter
    than LONE_LINE_SPAN of the picture's `extent` along it; None otherwise."""
    count, _, stats, _ = cv2.connectedComponentsWithStats(lines, connectivity=8)
    if count != 2 or max(stats[1, cv2.CC_STAT_WIDTH], stats[1, cv2.CC_STAT_HEIGHT]) >= LONE_LINE_SPAN * extent:
        return None
    return stats[1, :4]


def is_a_lone_line(lines: np.ndarray, others: np.ndarray, extent: int) -> bool:
    """Are `lines` one line (`lone_line_box`), with none the other way (`others`)? On a scan such a line is a pen's
    stroke: a form's box has two sides and a comb two ticks, standing on a line across them."""
    return not others.any() and lone_line_box(lines, extent) is not None


def cross_each_other(across: np.ndarray, upright: np.ndarray, shape: tuple[int, ...]) -> bool:
    """Are the lines drawn one line across and one upright (`lone_line_box`) that cross, each going on beyond the
    other by BASELINE_END of its length on both sides? A 4's bar and stem do; a form's lines meet at a box's corners,
    a comb's tick stands on its base, and a ruled page has many."""
    across_box, upright_box = lone_line_box(across, shape[1]), lone_line_box(upright, shape[0])
    if across_box is None or upright_box is None:
        return False
    (ax, ay, aw, ah), (ux, uy, uw, uh) = across_box, upright_box
    sideways = ax + BASELINE_END * aw < ux and ux + uw + BASELINE_END * aw < ax + aw
    up_and_down = uy + BASELINE_END * uh < ay and ay + ah + BASELINE_END * uh < uy + uh
    return bool(sideways and up_and_down)


def ends_a_stroke(line: np.ndarray, binary: np.ndarray) -> bool:
    """Does another stroke meet a line across (come within BASELINE_END of its length of it) within STROKE_END of its
    length of one of its ends? A digit's straight stroke across ends where another starts (a 7's bar at its leg, a
    2's base at its diagonal, overhanging it a little), while what is written on a field's baseline or a comb's base
    stands clear of its ends. Marks shorter than BASELINE_WRITTEN of its length (a comb's ticks, specks) are no
    strokes."""
    columns = np.flatnonzero((line & binary).any(axis=0))
    if columns.size == 0:
        return False
    left, right = int(columns[0]), int(columns[-1])
    length = right - left
    _, labels, stats, _ = cv2.connectedComponentsWithStats(binary & (1 - line), connectivity=8)
    strokes = np.isin(labels, 1 + np.flatnonzero(stats[1:, cv2.CC_STAT_HEIGHT] >= BASELINE_WRITTEN * length))
    gap = odd(2 * BASELINE_END * length)
    near = cv2.dilate(line, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (gap, gap))).astype(bool)
    meets = np.flatnonzero((near & strokes).any(axis=0))
    return bool(meets.size and (meets[0] <= left + STROKE_END * length or meets[-1] >= right - STROKE_END * length))


def draw_line(canvas: np.ndarray, x1: int, y1: int, x2: int, y2: int, width: float) -> None:
    """Draws a printed line's segment twice as thick as the line (the segment may run along the line's edge) and a
    line's width longer at each end (the transform's segments stop short of a blurred line's rounded ends)."""
    step = np.array([x2 - x1, y2 - y1], float) * width / max(float(np.hypot(x2 - x1, y2 - y1)), 1.0)
    start = np.round(np.array([x1, y1]) - step).astype(int)
    end = np.round(np.array([x2, y2]) + step).astype(int)
    cv2.line(canvas, (int(start[0]), int(start[1])), (int(end[0]), int(end[1])), 1, odd(2 * width + 1))


def draw_straight(canvas: np.ndarray, binary: np.ndarray, segment: Segment) -> None:
    """Draws the ink of `binary` in a segment's band (`draw_line`) that runs straight along it for STRAIGHT_RUN of
    its widths: as thick as a bold line measures, the band takes in the strokes touching it too."""
    x1, y1, x2, y2, horizontal, width = segment
    band = np.zeros_like(canvas)
    draw_line(band, x1, y1, x2, y2, width)
    run = odd(STRAIGHT_RUN * width)
    canvas |= band & opened(binary, (run, 1) if horizontal else (1, run))


def lies_along(lines: np.ndarray | None, x1: int, y1: int, x2: int, y2: int) -> bool:
    """Does a segment lie mostly on `lines` (None: there are none)?"""
    return lines is not None and bool(lines[along(x1, y1, x2, y2)].mean() > 0.5)


def stands_on(lines: np.ndarray, x1: int, y1: int, x2: int, y2: int) -> bool:
    """Whether a segment meets the printed lines across it without passing through them: a box's side ends on its
    lines and a comb's tick on its base, while a pen's stroke over a line goes on beyond it."""
    met = np.flatnonzero(lines[along(x1, y1, x2, y2)])
    return met.size > 0 and not (met[0] > 0 and met[-1] < max(abs(x2 - x1), abs(y2 - y1)))


def spans_between(lines: np.ndarray, x1: int, y1: int, x2: int, y2: int) -> bool:
    """Whether a segment runs from one printed line to another (it ends on `lines`), clear of them in between: a
    box's side."""
    met = lines[along(x1, y1, x2, y2)]
    return bool(met[0] and met[-1] and not met.all())


def opened(binary: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """`binary` where a rectangle of `size` (width, height) fits in its ink: runs at least that long."""
    return np.asarray(cv2.morphologyEx(binary, cv2.MORPH_OPEN, np.ones(size[::-1], np.uint8)), np.uint8)


def closed(binary: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """`binary` with its gaps across a rectangle of `size` (width, height) filled: where ink continues on both sides."""
    return np.asarray(cv2.morphologyEx(binary, cv2.MORPH_CLOSE, np.ones(size[::-1], np.uint8)), np.uint8)


def frames(stats: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per component: is it surely a printed frame (a hollow one around another sizeable component: a box around the
    digit); might it be one (sparse and across a good part of the picture: a comb, or a box the digit touches); and
    might it be a lone cell's comb (sparse and holding another sizeable component from below)?"""
    x, y, w, h, area = (stats[:, i] for i in range(5))
    extent = area / np.maximum(w * h, 1)
    sparse = extent < FRAME_EXTENT
    # Between its sides and above its bottom; a box's content is also below its top, a comb's need only reach
    # down into it (a comb is open at the top).
    between = (x[None, :] > x[:, None]) & ((x + w)[None, :] < (x + w)[:, None])
    between &= ((y + h)[None, :] < (y + h)[:, None]) & ((y + h)[None, :] > y[:, None])
    between &= area[None, :] > FRAME_CONTENT * area[:, None]
    surely = (extent < HOLLOW_EXTENT) & (between & (y[None, :] > y[:, None])).any(axis=1)
    maybe = sparse & ((w > FRAME_SPAN * shape[1]) | (h > FRAME_SPAN * shape[0])) & ~surely
    comb = sparse & between.any(axis=1) & (w > h) & ~surely  # a cell is wider than its comb's ticks are tall
    return surely, maybe, comb


def frame_lines(part: np.ndarray) -> tuple[np.ndarray, int]:
    """The straight sides of a frame component (a digit written over its box is part of it): segments nearly
    parallel to an axis and nearly as long as the frame in that direction, drawn as thick as its lines; and how many
    separate sides run along its bounding box's edges (a box has four, a comb a base and its end ticks; a 7's bar
    and leg are two, and a bar across its leg runs through the middle, where no frame has a side)."""
    height, width = part.shape
    distance = ink_distance(part)
    thickness = odd(2 * float(np.median(distance[distance > 0])) + 2)
    shorter = min(height, width)
    segments = cv2.HoughLinesP(
        part, 1, np.pi / 360, max(4, shorter // 2), minLineLength=shorter // 2, maxLineGap=LINE_GAP
    )
    drawn = np.zeros_like(part)
    sides: set[tuple[bool, float]] = set()  # (horizontal, position across it)
    for x1, y1, x2, y2 in segments[:, 0] if segments is not None else ():
        dx, dy = abs(int(x2) - int(x1)), abs(int(y2) - int(y1))
        horizontal = dx >= FRAME_SIDE * width and dy <= 0.27 * dx
        if horizontal or (dy >= FRAME_SIDE * height and dx <= 0.27 * dy):
            cv2.line(drawn, (int(x1), int(y1)), (int(x2), int(y2)), 1, thickness)
            across = (int(y1) + int(y2)) / 2 if horizontal else (int(x1) + int(x2)) / 2
            extent = height if horizontal else width
            if min(across, extent - 1 - across) <= FRAME_BORDER * extent:
                sides.add((horizontal, across))
    # Segments along one thick line lie side by side: a new side starts more than two line widths across.
    count = 0
    for direction in (False, True):
        spots = sorted(a for h, a in sides if h == direction)
        count += sum(1 for i, a in enumerate(spots) if i == 0 or a - spots[i - 1] > 2 * thickness)
    return drawn.astype(bool) & part.astype(bool), count


def without_frames(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The mask with the sides of its printed frames taken out (what a frame held stays), and where the frames
    were (a mask of their bounding boxes). A component that might be a frame counts as one when most of it is
    straight sides, at least FRAME_SIDES of them (COMB_SIDES for a comb holding a mark); a digit's own straight
    strokes are not."""
    _, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    surely, maybe, comb = frames(stats[1:], mask.shape)
    cleaned = mask.copy()
    boxes = np.zeros(mask.shape, bool)
    for label in 1 + np.flatnonzero(surely | maybe | comb):
        x, y, w, h, area = stats[label]
        part = (labels[y : y + h, x : x + w] == label).astype(np.uint8)
        lines, sides = frame_lines(part)
        needed = COMB_SIDES if comb[label - 1] else FRAME_SIDES
        if surely[label - 1] or (sides >= needed and lines.sum() >= FRAME_SHARE * area):
            cleaned[y : y + h, x : x + w] &= ~lines
            boxes[y : y + h, x : x + w] = True
    return cleaned, boxes


def labels_beside(stats: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Per component: is it a form's label printed on the left of what was written, its letters run together into
    one wide mark (the word rule sees no row of letters in it)? What was written is the mark with the most `weight`
    that is not wide: a bold label can outweigh a digit written with a fine pen."""
    x, y, w, h = (stats[:, i].astype(float) for i in range(4))
    wide = w >= LABEL_ASPECT * h
    if wide.all():
        return np.zeros(len(stats), bool)
    written = int(np.argmax(np.where(wide, 0.0, weight)))
    rows = LABEL_ROWS * h[written]
    return (
        wide
        & (x + w <= x[written] - LABEL_CLEAR * h[written])
        & (y >= y[written] - rows)
        & (y + h <= y[written] + h[written] + rows)
    )


def in_text_row(stats: np.ndarray) -> np.ndarray:
    """Per component: is it a letter of a printed word (a form's label), in a row of marks alike in height? A
    written digit stands alone, or in pieces of unlike sizes. The row is a chain of neighbours, so a word's first
    and last letters, with one neighbour each, are in it."""
    x, y, w, h = (stats[:, i].astype(float) for i in range(4))
    taller = np.maximum(h[:, None], h[None, :])
    alike = np.minimum(h[:, None], h[None, :]) > taller / TEXT_HEIGHTS
    level = np.abs((y + h / 2)[:, None] - (y + h / 2)[None, :]) < TEXT_LINE * taller
    gap = np.maximum(x[None, :] - (x + w)[:, None], x[:, None] - (x + w)[None, :])
    beside = gap < TEXT_GAP * taller
    # [i, j]: j is reached from i through mates, step by step. Squaring doubles the steps each time, so a chain of
    # hundreds of dashes takes a few products (in floats: NumPy multiplies them with BLAS).
    row = (alike & level & beside).astype(np.float32)
    while True:
        grown = ((row @ row) > 0).astype(np.float32)
        if np.array_equal(grown, row):
            break
        row = grown
    return row.sum(axis=1) >= TEXT_ROW + 1


def cells(lines: np.ndarray) -> np.ndarray:
    """Where printed lines close all around: a form's boxes, whose lines `printed_lines` has already taken out."""
    # A scan's blur or a bilevel threshold can break a line a few pixels short of the next one.
    gap = odd(CELL_GAP * max(lines.shape))
    walls = cv2.dilate(lines.astype(np.uint8), np.ones((gap, gap), np.uint8)).astype(bool)
    open_space = np.pad(~walls, 1, constant_values=True).astype(np.uint8)
    cv2.floodFill(open_space, None, (0, 0), 0)  # 4-connected: a diagonal line still closes a cell
    return open_space[1:-1, 1:-1].astype(bool)


def is_sizeable(weight: np.ndarray) -> np.ndarray:
    """Per component: does it count at least SIZEABLE as much as the strongest one?"""
    return weight >= SIZEABLE * weight.max()


def row_bands(tops: np.ndarray, bottoms: np.ndarray) -> np.ndarray:
    """Per mark (its top and bottom rows): the index of its band of rows, top down. A band is a run of rows holding
    marks; clear paper shorter than LABEL_GAP times the band's height does not end it."""
    order = np.argsort(tops)
    band = np.zeros(len(tops), int)
    if not len(tops):
        return band
    start, end, index = tops[order[0]], bottoms[order[0]], 0
    for k in order:
        if tops[k] - end >= LABEL_GAP * (end - start):
            start, index = tops[k], index + 1
        end = max(end, bottoms[k])
        band[k] = index
    return band


def on_lines(stats: np.ndarray, labels: np.ndarray, lines: np.ndarray) -> np.ndarray:
    """Per component: does it touch the printed lines, its middle within their rows (a comb's short tick, what is
    left of a box's side)?"""
    rows = np.flatnonzero(lines.any(axis=1))
    if not rows.size:
        return np.zeros(len(stats), bool)
    near_lines = cv2.dilate(lines.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    touching = np.bincount(labels[near_lines], minlength=len(stats) + 1)[1:] > 0
    return touching & (stats[:, 1] + stats[:, 3] / 2 >= rows[0])


def form_ticks(stats: np.ndarray, on_the_lines: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Per component: is it a comb's tick or a stub of a box's side the printed lines left? It touches them
    (`on_lines`) and is thin (TICK_ASPECT times as long as it is wide) or short (under SIDE_SPAN of the picture)."""
    width, height = stats[:, 2], stats[:, 3]
    length = np.maximum(width, height)
    thin = TICK_ASPECT * np.minimum(width, height) < length
    return on_the_lines & (thin | (length < SIDE_SPAN * min(shape)))


def printed_labels(stats: np.ndarray, weight: np.ndarray, lines: np.ndarray, on_the_lines: np.ndarray) -> np.ndarray:
    """Per component: is it a scanned form's printed label, above what was written? A form here has printed lines
    at least a side's span tall (a comb's ticks, a box's sides); without them only a `caption` is. A mark on the
    lines (`on_lines`) is not what was written."""
    rows = np.flatnonzero(lines.any(axis=1))
    if not rows.size or rows[-1] - rows[0] < SIDE_SPAN * min(lines.shape):
        return caption(stats, weight, lines.shape[0])
    label = np.zeros(len(stats), bool)
    y, h = stats[:, 1], stats[:, 3]
    sizeable = np.flatnonzero(is_sizeable(weight))
    tall = h[sizeable]
    band = row_bands(y[sizeable], y[sizeable] + tall)
    written = ~on_the_lines[sizeable]
    # [i, j]: sizeable mark j was written in a band below mark i's, and is at least LABEL_HEIGHT of i's height.
    under = (band[None, :] > band[:, None]) & written[None, :] & (tall[None, :] >= LABEL_HEIGHT * tall[:, None])
    label[sizeable] = under.any(axis=1)
    return label


def labels_above(stats: np.ndarray, lines: np.ndarray) -> np.ndarray:
    """Per component: is it a label printed above a form's field? It lies over the field's printed lines, which
    stand upright in two places or more a side's span tall (a comb's ticks, a box's sides), and clear of them by
    its own height or more. A digit written in a comb's cell reaches closer to the ticks than that; a notebook's
    ruling has no label above it, and a sheet's edge or the table in a photo stands up in one place at most."""
    upright = lines.sum(axis=0) >= SIDE_SPAN * min(lines.shape)
    sides = int(np.count_nonzero(upright[1:] & ~upright[:-1])) + int(upright[0])
    if sides < 2 or is_ruled(lines):
        return np.zeros(len(stats), bool)
    rows, cols = np.flatnonzero(lines.any(axis=1)), np.flatnonzero(lines.any(axis=0))
    x, y, w, h = (stats[:, i].astype(float) for i in range(4))
    middle = x + w / 2
    return (cols[0] <= middle) & (middle <= cols[-1]) & (rows[0] - (y + h) >= h)


def caption(stats: np.ndarray, weight: np.ndarray, height: int) -> np.ndarray:
    """Per component: is it a heading printed at the top of a scan without a form's lines, far above what was
    written (CAPTION_ZONE)?"""
    top, tall = stats[:, 1], stats[:, 3]
    sizeable = np.flatnonzero(is_sizeable(weight))
    first = row_bands(top[sizeable], top[sizeable] + tall[sizeable]) == 0
    heading, below = sizeable[first], sizeable[~first]
    label = np.zeros(len(stats), bool)
    if not below.size:
        return label
    written = below[np.argmax(weight[below])]
    bottom = int((top[heading] + tall[heading]).max())
    clear = int(top[below].min()) - bottom
    label[heading] = bottom < CAPTION_ZONE * height and clear >= tall[written] >= tall[heading].max()
    return label


def written_field(
    stats: np.ndarray, weight: np.ndarray, in_cell: np.ndarray, lines: np.ndarray, on_the_lines: np.ndarray | None
) -> np.ndarray:
    """Per component: might it be what was written on a form? What a closed cell holds, if it holds a sizeable
    mark; otherwise, on a scan (where `on_the_lines` is given), whatever is not a printed label. In a photo of a
    sheet every mark might be: its edges and shadows make lines too."""
    in_cell = in_cell & is_sizeable(weight)
    if in_cell.any():
        return in_cell
    if on_the_lines is not None:
        return ~printed_labels(stats, weight, lines, on_the_lines)
    return np.ones(len(stats), bool)
