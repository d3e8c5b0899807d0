#pragma once
// The Gaussian target of awing_loss_from_coords (docs/awing.md), shared by the CPU and CUDA
// kernels.
//
// y(x, y) = exp(−((x−cx)² + (y−cy)²)/(2σ²)) = gx(x)·gy(y): the target is the product of a
// column and a row factor, so a kernel takes H + W exponentials per heatmap (or per tile), not
// one per pixel. The k×k grey dilation of the weighted target w·y (AWing's map, §4.3) is
// separable as well: w ≥ 0 takes, per column, the window's pixel nearest to cx, and per row the
// one nearest to cy; w < 0 the farthest ones. Pixel centres are at integers; the window is cut
// at the map's edges (max_pool2d's −inf padding).
#include <cmath>

#include "macros.h"

namespace landmark_kernels {

// A missing landmark (a NaN coordinate) renders as an all-zero heatmap, as
// render_gaussian_heatmaps does: its centre moves to +inf, whose factors are exp(−inf) = 0.
template <typename T>
LK_HD void landmark_centre(T* cx, T* cy) {
  if (*cx != *cx || *cy != *cy) *cx = *cy = T(INFINITY);
}

// The pixel in [lo, hi] (integers) where w·exp(−(j − c)²/2σ²) is largest: the one nearest to c
// for w ≥ 0 (the parabola's minimum clamped into the window), the farther end for w < 0.
template <typename T>
LK_HD T dilation_pixel(T c, T lo, T hi, bool farthest) {
  using std::floor;
  if (farthest) return c - lo > hi - c ? lo : hi;
  const T nearest = floor(c + T(0.5));
  return nearest < lo ? lo : (nearest > hi ? hi : nearest);
}

// The Gaussian factor exp(−d²/(2σ²)) along one axis at pixel j, with neg_half_inv_var =
// −1/(2σ²); and the factor of the k×k dilation there (window j − r .. j + r within [0, n − 1]).
template <typename Fns, typename T>
LK_HD T gaussian_factor(T j, T c, T neg_half_inv_var) {
  const T d = j - c;
  return Fns::exp(d * d * neg_half_inv_var);
}

template <typename Fns, typename T>
LK_HD T dilated_factor(T j, T c, T neg_half_inv_var, int64_t radius, int64_t n, bool farthest) {
  const T lo = j - T(radius) > T(0) ? j - T(radius) : T(0);
  const T hi = j + T(radius) < T(n - 1) ? j + T(radius) : T(n - 1);
  return gaussian_factor<Fns>(dilation_pixel(c, lo, hi, farthest), c, neg_half_inv_var);
}

}  // namespace landmark_kernels
