//! Plane geometry for text boxes: convex hull, minimum-area rectangle, and the quadrilateral a
//! text line is cropped from. Coordinates are pixels, `y` pointing down.

/// A point in pixel coordinates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Point {
    pub x: f32,
    pub y: f32,
}

impl Point {
    pub fn new(x: f32, y: f32) -> Self {
        Point { x, y }
    }

    pub fn distance(self, other: Point) -> f32 {
        (self.x - other.x).hypot(self.y - other.y)
    }
}

/// A text box as four corners: top-left, top-right, bottom-right, bottom-left, "top" and
/// "left" as the text reads.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Quad(pub [Point; 4]);

impl Quad {
    /// Length of the reading direction (the longer of the top and bottom edges).
    pub fn width(&self) -> f32 {
        let [tl, tr, br, bl] = self.0;
        tl.distance(tr).max(bl.distance(br))
    }

    /// Length across the reading direction (the longer of the left and right edges).
    pub fn height(&self) -> f32 {
        let [tl, tr, br, bl] = self.0;
        tl.distance(bl).max(tr.distance(br))
    }

    /// Every corner scaled by `(sx, sy)`, then clamped to `[0, max_x] x [0, max_y]`.
    pub fn scaled(&self, sx: f32, sy: f32, max_x: f32, max_y: f32) -> Quad {
        Quad(
            self.0
                .map(|p| Point::new((p.x * sx).clamp(0.0, max_x), (p.y * sy).clamp(0.0, max_y))),
        )
    }

    /// The axis-aligned bounds `(x_min, y_min, x_max, y_max)`.
    pub fn bounds(&self) -> (f32, f32, f32, f32) {
        self.0.iter().fold(
            (f32::MAX, f32::MAX, f32::MIN, f32::MIN),
            |(x0, y0, x1, y1), p| (x0.min(p.x), y0.min(p.y), x1.max(p.x), y1.max(p.y)),
        )
    }
}

/// A rectangle at any angle. `axis` is the unit vector of its width, the one of its two axes
/// closer to horizontal, pointing right; the height runs along `axis` turned 90° (downwards).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct RotatedRect {
    pub center: Point,
    pub axis: Point,
    pub width: f32,
    pub height: f32,
}

impl RotatedRect {
    pub fn short_side(&self) -> f32 {
        self.width.min(self.height)
    }

    /// The rectangle grown by `distance` on every side.
    pub fn grown(&self, distance: f32) -> RotatedRect {
        RotatedRect {
            width: self.width + 2.0 * distance,
            height: self.height + 2.0 * distance,
            ..*self
        }
    }

    pub fn corners(&self) -> Quad {
        let (u, c) = (self.axis, self.center);
        let v = Point::new(-u.y, u.x);
        let (hw, hh) = (self.width / 2.0, self.height / 2.0);
        let at = |a: f32, b: f32| Point::new(c.x + u.x * a + v.x * b, c.y + u.y * a + v.y * b);
        Quad([at(-hw, -hh), at(hw, -hh), at(hw, hh), at(-hw, hh)])
    }
}

/// Convex hull of `points` (Andrew's monotone chain), counter-clockwise in a y-up frame, without
/// collinear points. Sorts and deduplicates `points` in place.
pub(crate) fn convex_hull(points: &mut Vec<(i32, i32)>) -> Vec<(i32, i32)> {
    points.sort_unstable();
    points.dedup();
    let cross = |o: (i32, i32), a: (i32, i32), b: (i32, i32)| {
        i64::from(a.0 - o.0) * i64::from(b.1 - o.1) - i64::from(a.1 - o.1) * i64::from(b.0 - o.0)
    };
    // Pushes `p`, first dropping points (above `floor`) that would make a clockwise turn.
    let push = |hull: &mut Vec<(i32, i32)>, floor: usize, p: (i32, i32)| {
        while hull.len() >= floor + 2 && cross(hull[hull.len() - 2], hull[hull.len() - 1], p) <= 0 {
            hull.pop();
        }
        hull.push(p);
    };
    let mut hull = Vec::with_capacity(points.len() + 1);
    for &p in points.iter() {
        push(&mut hull, 0, p);
    }
    // The last point of each chain is the first of the other.
    hull.pop();
    let floor = hull.len();
    for &p in points.iter().rev() {
        push(&mut hull, floor, p);
    }
    hull.pop();
    if hull.is_empty() {
        hull.extend(points.first());
    }
    hull
}

/// The smallest-area rectangle holding every point of the convex polygon `hull` (rotating
/// calipers: one side of the optimum lies on a hull edge). `None` for an empty hull.
pub(crate) fn min_area_rect(hull: &[(i32, i32)]) -> Option<RotatedRect> {
    let point = |&(x, y): &(i32, i32)| Point::new(x as f32, y as f32);
    let first = point(hull.first()?);
    let mut best = RotatedRect {
        center: first,
        axis: Point::new(1.0, 0.0),
        width: 0.0,
        height: 0.0,
    };
    let mut best_area = f32::INFINITY;
    for (i, a) in hull.iter().enumerate() {
        let (a, b) = (point(a), point(&hull[(i + 1) % hull.len()]));
        let length = a.distance(b);
        if length == 0.0 {
            continue;
        }
        let u = Point::new((b.x - a.x) / length, (b.y - a.y) / length);
        let v = Point::new(-u.y, u.x);
        let (mut u_min, mut u_max, mut v_min, mut v_max) = (f32::MAX, f32::MIN, f32::MAX, f32::MIN);
        for p in hull.iter().map(point) {
            let (pu, pv) = (p.x * u.x + p.y * u.y, p.x * v.x + p.y * v.y);
            (u_min, u_max) = (u_min.min(pu), u_max.max(pu));
            (v_min, v_max) = (v_min.min(pv), v_max.max(pv));
        }
        let area = (u_max - u_min) * (v_max - v_min);
        if area < best_area {
            best_area = area;
            let (cu, cv) = ((u_min + u_max) / 2.0, (v_min + v_max) / 2.0);
            best = RotatedRect {
                center: Point::new(u.x * cu + v.x * cv, u.y * cu + v.y * cv),
                axis: u,
                width: u_max - u_min,
                height: v_max - v_min,
            };
        }
    }
    Some(upright(best))
}

/// The same rectangle described with its width along the axis closer to horizontal, pointing
/// right, so `corners()` starts at the top-left as text reads.
fn upright(rect: RotatedRect) -> RotatedRect {
    let RotatedRect {
        center,
        axis,
        width,
        height,
    } = rect;
    let (axis, width, height) = if axis.x.abs() >= axis.y.abs() {
        (axis, width, height)
    } else {
        (Point::new(-axis.y, axis.x), height, width)
    };
    let axis = if axis.x < 0.0 {
        Point::new(-axis.x, -axis.y)
    } else {
        axis
    };
    RotatedRect {
        center,
        axis,
        width,
        height,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f32, b: f32) -> bool {
        (a - b).abs() < 1e-3
    }

    #[test]
    fn hull_of_a_filled_block_is_its_corners() {
        let mut points: Vec<(i32, i32)> =
            (0..5).flat_map(|y| (0..10).map(move |x| (x, y))).collect();
        let mut hull = convex_hull(&mut points);
        hull.sort_unstable();
        assert_eq!(hull, vec![(0, 0), (0, 4), (9, 0), (9, 4)]);
    }

    #[test]
    fn degenerate_hulls() {
        assert_eq!(convex_hull(&mut vec![(3, 4)]), vec![(3, 4)]);
        assert_eq!(convex_hull(&mut vec![(3, 4), (3, 4)]), vec![(3, 4)]);
        assert_eq!(convex_hull(&mut vec![(0, 0), (5, 0), (2, 0)]).len(), 2);
        assert!(min_area_rect(&[]).is_none());
        let rect = min_area_rect(&[(3, 4)]).expect("one point");
        assert_eq!((rect.width, rect.height), (0.0, 0.0));
    }

    #[test]
    fn axis_aligned_rectangle() {
        let rect = min_area_rect(&[(2, 1), (12, 1), (12, 5), (2, 5)]).expect("rect");
        assert!(
            close(rect.width, 10.0) && close(rect.height, 4.0),
            "{rect:?}"
        );
        assert!(
            close(rect.center.x, 7.0) && close(rect.center.y, 3.0),
            "{rect:?}"
        );
        let [tl, tr, br, bl] = rect.corners().0;
        assert!(close(tl.x, 2.0) && close(tl.y, 1.0), "{tl:?}");
        assert!(close(tr.x, 12.0) && close(tr.y, 1.0), "{tr:?}");
        assert!(close(br.x, 12.0) && close(br.y, 5.0), "{br:?}");
        assert!(close(bl.x, 2.0) && close(bl.y, 5.0), "{bl:?}");
        let grown = rect.grown(1.0);
        assert!(close(grown.width, 12.0) && close(grown.height, 6.0));
    }

    #[test]
    fn tilted_rectangle_reads_left_to_right() {
        // A 20x4 bar rising to the right by 3:4 (about 37°), given in any order.
        let (u, v) = (Point::new(0.8, -0.6), Point::new(0.6, 0.8));
        let corner = |a: f32, b: f32| {
            (
                (10.0 + u.x * a + v.x * b).round() as i32,
                (30.0 + u.y * a + v.y * b).round() as i32,
            )
        };
        let mut points = vec![
            corner(20.0, 4.0),
            corner(0.0, 0.0),
            corner(20.0, 0.0),
            corner(0.0, 4.0),
        ];
        let hull = convex_hull(&mut points);
        let rect = min_area_rect(&hull).expect("rect");
        assert!((rect.width - 20.0).abs() < 0.6, "{rect:?}");
        assert!((rect.height - 4.0).abs() < 0.6, "{rect:?}");
        assert!(
            rect.axis.x > 0.0 && rect.axis.y < 0.0,
            "rises to the right: {rect:?}"
        );
        let quad = rect.corners();
        assert!((quad.width() - 20.0).abs() < 0.6 && (quad.height() - 4.0).abs() < 0.6);
        let [tl, tr, ..] = quad.0;
        assert!(tl.x < tr.x && tl.y > tr.y, "{quad:?}");
    }

    #[test]
    fn tall_rectangle_keeps_its_height_vertical() {
        let rect = min_area_rect(&[(0, 0), (3, 0), (3, 30), (0, 30)]).expect("rect");
        assert!(
            close(rect.width, 3.0) && close(rect.height, 30.0),
            "{rect:?}"
        );
        assert!(close(rect.axis.x, 1.0), "{rect:?}");
    }

    #[test]
    fn quad_scaling_clamps_to_the_image() {
        let quad = Quad([
            Point::new(-1.0, 0.0),
            Point::new(10.0, 0.0),
            Point::new(10.0, 5.0),
            Point::new(-1.0, 5.0),
        ]);
        let scaled = quad.scaled(2.0, 2.0, 15.0, 100.0);
        assert_eq!(scaled.bounds(), (0.0, 0.0, 15.0, 10.0));
    }
}
