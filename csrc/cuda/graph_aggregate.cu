// Sparse graph-relational aggregation (SDFL, docs/graph.md) on CUDA: the semantics of
// cpu/graph_aggregate.cpp, with the traversal of graph_csr.h.
//
// One warp per (sample b, node) "unit"; each lane owns 4 consecutive features of every 128, so a
// warp reads whole 512-byte rows (fp32) with 16-byte loads (kVec4: every row aligned and F % 4
// == 0, else a one-chunk scalar fallback, instantiated apart so that neither carries the other's
// code in its edge loop). A node's gather list is walked 32
// entries at a time: lane j resolves entry j (its neighbour, edge id and softmax weight — for
// transposed lists the weight needs the softmax of the neighbour's own row, so the 32 rows are
// normalised in parallel), then the warp broadcasts them with shuffles.
//   forward_kernel: out[b,o] = bias + Σ a·(self ? h_self[b,o] : h_neigh[b,other]).
//   backward_nodes_kernel (opposite list): grad_h_neigh[b,s] = Σ_{o≠s} a·grad_out[b,o],
//     grad_h_self[b,s] = a_ss·grad_out[b,s], da[p,b,k] = <grad_out[b,o], x_s> over the features
//     of pass p (warp-shuffle sum, stored by lane 0, which alone owns edge k of sample b: no
//     atomics, and no read-modify-write that would stall the edge loop), and the bias
//     partial sum of each block (its warps' rows of grad_out, added in smem in warp order).
//   backward_rows_kernel: one warp per (CSR row, 32 samples), a lane per sample: da summed over
//     the passes in order, the softmax backward de = a·(da − Σ_row a·da); per-sample logits get
//     de, shared logits the warp's
//     fixed-order shuffle sum.
//   column_sums_kernel: fixed-order column sums of the bias and shared-logit partials.
// No float atomics anywhere: the same inputs give the same bits on every run.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <algorithm>
#include <cstdint>
#include <tuple>

#include "../graph_ops.h"

namespace landmark_kernels {
namespace {

constexpr int kWarps = 8;
constexpr int kThreads = kWarps * 32;
constexpr int kVec = 4;
constexpr int kLanesSpan = 32 * kVec;  // features one pass of one chunk covers
constexpr unsigned kFullMask = 0xffffffffu;
// Fixed (device-independent) cap on backward blocks: the bias partials, and the order in which
// they are added, depend on the problem size only. Larger problems loop over units.
constexpr int64_t kMaxNodeBlocks = 1024;

template <typename T>
struct alignas(sizeof(T) * kVec < 16 ? sizeof(T) * kVec : 16) Vec4 {
  T v[kVec];
};

// Rows of a (B,N,F) tensor with unit stride along F.
template <typename scalar_t>
struct Feat {
  const scalar_t* data;
  int64_t sb, sn;
  __device__ __forceinline__ const scalar_t* row(int64_t b, int64_t n) const {
    return data + b * sb + n * sn;
  }
};

// The ≤ 4 features of a lane at f (n of them valid), in the compute type. kVec4: one vector
// access (n is 0 or 4 there).
template <bool kVec4, typename T, typename scalar_t>
__device__ __forceinline__ Vec4<T> load4(const scalar_t* p, int64_t f, int n) {
  Vec4<T> out{};
  if (kVec4) {
    if (n != kVec) return out;
    const Vec4<scalar_t> raw = *reinterpret_cast<const Vec4<scalar_t>*>(p + f);
#pragma unroll
    for (int i = 0; i < kVec; ++i) out.v[i] = T(raw.v[i]);
  } else {
#pragma unroll
    for (int i = 0; i < kVec; ++i) out.v[i] = i < n ? T(p[f + i]) : T(0);
  }
  return out;
}

template <bool kVec4, typename scalar_t, typename T>
__device__ __forceinline__ void store4(scalar_t* p, int64_t f, int n, const Vec4<T>& x) {
  if (kVec4) {
    if (n != kVec) return;
    Vec4<scalar_t> raw;
#pragma unroll
    for (int i = 0; i < kVec; ++i) raw.v[i] = scalar_t(x.v[i]);
    *reinterpret_cast<Vec4<scalar_t>*>(p + f) = raw;
  } else {
#pragma unroll
    for (int i = 0; i < kVec; ++i)
      if (i < n) p[f + i] = scalar_t(x.v[i]);
  }
}

// Features f of chunk c of the pass starting at f0, and how many of the lane's 4 are valid.
__device__ __forceinline__ int64_t lane_feature(int64_t f0, int c, int lane) {
  return f0 + (int64_t(c) * 32 + lane) * kVec;
}
__device__ __forceinline__ int valid_count(int64_t f, int64_t features) {
  const int64_t left = features - f;
  return left <= 0 ? 0 : (left < kVec ? int(left) : kVec);
}

template <typename T>
__device__ __forceinline__ T warp_sum(T v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(kFullMask, v, o);
  return v;
}

template <typename scalar_t>
struct Args {
  using T = at::opmath_type<scalar_t>;
  CsrView g;
  int64_t batch, nodes, features, units;
  int64_t passes;  // backward: feature passes, the leading dimension of da
  bool per_sample;
  const scalar_t* logits;
  Feat<scalar_t> h_self, h_neigh, grad_out;
  const scalar_t* bias;
  scalar_t* out;
  scalar_t* grad_self;
  scalar_t* grad_neigh;
  T* da;            // (passes,B,E)
  T* bias_partial;  // (blocks, F) or nullptr
};

// Lane j's entry of the current 32-entry window of a gather list: its neighbour (−1 when out of
// range or invalid), edge id and softmax weight.
struct Entry {
  int64_t other, edge;
};

template <typename T, typename scalar_t>
__device__ __forceinline__ Entry resolve_entry(const Args<scalar_t>& a, bool by_rows,
                                               const scalar_t* lg, const RowSoftmax<T>& own,
                                               int64_t t, int64_t t1, T* weight) {
  *weight = T(0);
  if (t >= t1) return {-1, 0};
  const ListEntry e = list_entry(a.g, by_rows, t);
  if (!e.valid) return {-1, 0};
  // A CSR list is the softmax row itself; a transposed list's edge is normalised over the
  // neighbour's row.
  const RowSoftmax<T> sm = by_rows ? own : row_softmax<T>(lg, a.g, e.other);
  *weight = sm.weight(T(lg[e.edge]));
  return {e.other, e.edge};
}

// At most 64 registers in fp32/fp16/bf16: four blocks (32 warps) a SM.
template <typename scalar_t, int kChunks, bool kVec4>
__global__ void __launch_bounds__(kThreads, sizeof(scalar_t) <= 4 ? 4 : 2)
    forward_kernel(const Args<scalar_t> a, bool by_rows) {
  using T = at::opmath_type<scalar_t>;
  const int lane = threadIdx.x % 32;
  const int64_t u = int64_t(blockIdx.x) * kWarps + threadIdx.x / 32;
  if (u >= a.units) return;  // whole warps only: no block-wide sync in this kernel
  const int64_t b = u / a.nodes, o = u % a.nodes;
  const scalar_t* lg = a.logits + (a.per_sample ? b * a.g.edges : 0);
  const RowSoftmax<T> own = by_rows ? row_softmax<T>(lg, a.g, o) : RowSoftmax<T>{};
  int64_t t0, t1;
  list_range(by_rows ? a.g.rowptr : a.g.t_rowptr, o, a.g.edges, &t0, &t1);

  for (int64_t f0 = 0; f0 < a.features; f0 += kChunks * kLanesSpan) {
    Vec4<T> acc[kChunks];
#pragma unroll
    for (int c = 0; c < kChunks; ++c) {
      const int64_t f = lane_feature(f0, c, lane);
      acc[c] = a.bias ? load4<false, T>(a.bias, f, valid_count(f, a.features)) : Vec4<T>{};
    }
    for (int64_t w0 = t0; w0 < t1; w0 += 32) {
      T my_weight;
      const Entry mine = resolve_entry(a, by_rows, lg, own, w0 + lane, t1, &my_weight);
      const int count = t1 - w0 < 32 ? int(t1 - w0) : 32;
      for (int j = 0; j < count; ++j) {
        const int64_t other = __shfl_sync(kFullMask, mine.other, j);
        const T w = __shfl_sync(kFullMask, my_weight, j);
        if (other < 0) continue;  // warp-uniform
        const scalar_t* src = other == o ? a.h_self.row(b, o) : a.h_neigh.row(b, other);
#pragma unroll
        for (int c = 0; c < kChunks; ++c) {
          const int64_t f = lane_feature(f0, c, lane);
          const Vec4<T> x = load4<kVec4, T>(src, f, valid_count(f, a.features));
#pragma unroll
          for (int i = 0; i < kVec; ++i) acc[c].v[i] += w * x.v[i];
        }
      }
    }
#pragma unroll
    for (int c = 0; c < kChunks; ++c) {
      const int64_t f = lane_feature(f0, c, lane);
      store4<kVec4>(a.out + u * a.features, f, valid_count(f, a.features), acc[c]);
    }
  }
}

// At most 80 registers in fp32/fp16/bf16: three blocks (24 warps) a SM (ptxas -v: 28 bytes of
// spills, outside the edge loop); with two (108 registers) too few loads were in flight for the
// memory floor at F = 1024.
template <typename scalar_t, int kChunks, bool kVec4>
__global__ void __launch_bounds__(kThreads, sizeof(scalar_t) <= 4 ? 3 : 2)
    backward_nodes_kernel(const Args<scalar_t> a, bool by_rows) {
  using T = at::opmath_type<scalar_t>;
  // The bias partial of the pass: each warp sums its rows of grad_out in its own slots (shared
  // memory rather than registers, which the gather loop needs), then the warps' sums are added
  // in warp order.
  __shared__ Vec4<T> bias_rows[kWarps][kChunks * 32];
  // h_neigh[b,s] of the pass, each lane's own slots (no sync): in registers it left room for
  // only two of the four grad_out loads of an edge in flight at 80 registers.
  __shared__ Vec4<T> x_rows[kWarps][kChunks * 32];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int64_t stride = int64_t(gridDim.x) * kWarps;
  const int64_t first = int64_t(blockIdx.x) * kWarps + warp;
  const int64_t edges = a.g.edges;

  for (int64_t f0 = 0; f0 < a.features; f0 += kChunks * kLanesSpan) {
    T* const da_pass = a.da + f0 / (kChunks * kLanesSpan) * a.batch * edges;
#pragma unroll
    for (int c = 0; c < kChunks; ++c) bias_rows[warp][c * 32 + lane] = Vec4<T>{};
    for (int64_t u = first; u < a.units; u += stride) {
      const int64_t b = u / a.nodes, s = u % a.nodes;
      const scalar_t* lg = a.logits + (a.per_sample ? b * edges : 0);
      const RowSoftmax<T> own = by_rows ? row_softmax<T>(lg, a.g, s) : RowSoftmax<T>{};
      int64_t t0, t1;
      list_range(by_rows ? a.g.rowptr : a.g.t_rowptr, s, edges, &t0, &t1);
      // The self edge (the diagonal, which reads h_self) is kept out of the edge loop, whose
      // live registers are then acc and one grad_out row: its score <grad_out[b,s],
      // h_self[b,s]> first (that grad_out row also goes to the bias partial), its weight summed
      // in the loop, grad_h_self = a_ss·grad_out[b,s] after it.
      const scalar_t* const g_row = a.grad_out.row(b, s);
      Vec4<T> acc[kChunks];
      T self_dot = T(0);
#pragma unroll
      for (int c = 0; c < kChunks; ++c) {
        const int64_t f = lane_feature(f0, c, lane);
        const int n = valid_count(f, a.features);
        const Vec4<T> g = load4<kVec4, T>(g_row, f, n);
        const Vec4<T> x = load4<kVec4, T>(a.h_self.row(b, s), f, n);
#pragma unroll
        for (int i = 0; i < kVec; ++i) self_dot += g.v[i] * x.v[i];
        if (a.bias_partial != nullptr) {
#pragma unroll
          for (int i = 0; i < kVec; ++i) bias_rows[warp][c * 32 + lane].v[i] += g.v[i];
        }
        x_rows[warp][c * 32 + lane] = load4<kVec4, T>(a.h_neigh.row(b, s), f, n);
        acc[c] = Vec4<T>{};
      }
      self_dot = warp_sum(self_dot);
      T self_weight = T(0);
      bool has_self = false;
      for (int64_t w0 = t0; w0 < t1; w0 += 32) {
        T my_weight;
        const Entry mine = resolve_entry(a, by_rows, lg, own, w0 + lane, t1, &my_weight);
        const int count = t1 - w0 < 32 ? int(t1 - w0) : 32;
        for (int j = 0; j < count; ++j) {
          const int64_t other = __shfl_sync(kFullMask, mine.other, j);
          const int64_t edge = __shfl_sync(kFullMask, mine.edge, j);
          const T w = __shfl_sync(kFullMask, my_weight, j);
          if (other < 0) continue;  // warp-uniform
          T dot = self_dot;
          if (other == s) {  // warp-uniform
            self_weight += w;
            has_self = true;
          } else {
            dot = T(0);
            Vec4<T> g[kChunks];  // all loads first: kChunks of them in flight
#pragma unroll
            for (int c = 0; c < kChunks; ++c) {
              const int64_t f = lane_feature(f0, c, lane);
              g[c] = load4<kVec4, T>(a.grad_out.row(b, other), f, valid_count(f, a.features));
            }
#pragma unroll
            for (int c = 0; c < kChunks; ++c) {
              const Vec4<T> x = x_rows[warp][c * 32 + lane];
#pragma unroll
              for (int i = 0; i < kVec; ++i) {
                dot += g[c].v[i] * x.v[i];
                acc[c].v[i] += w * g[c].v[i];
              }
            }
            dot = warp_sum(dot);
          }
          if (lane == 0) da_pass[b * edges + edge] = dot;
        }
      }
#pragma unroll
      for (int c = 0; c < kChunks; ++c) {
        const int64_t f = lane_feature(f0, c, lane);
        const int n = valid_count(f, a.features);
        store4<kVec4>(a.grad_neigh + u * a.features, f, n, acc[c]);
        Vec4<T> gs{};
        if (has_self) {  // warp-uniform; the row was read before the loop (a cache hit)
          gs = load4<kVec4, T>(g_row, f, n);
#pragma unroll
          for (int i = 0; i < kVec; ++i) gs.v[i] *= self_weight;
        }
        store4<kVec4>(a.grad_self + u * a.features, f, n, gs);
      }
    }
    if (a.bias_partial != nullptr) {  // block-uniform
      __syncthreads();
      for (int e = threadIdx.x; e < kChunks * kLanesSpan; e += kThreads) {
        T sum = T(0);
#pragma unroll
        for (int w = 0; w < kWarps; ++w) sum += bias_rows[w][e / kVec].v[e % kVec];
        const int64_t f = f0 + e;
        if (f < a.features) a.bias_partial[int64_t(blockIdx.x) * a.features + f] = sum;
      }
      __syncthreads();  // the next pass overwrites bias_rows
    }
  }
}

// Softmax backward: warp per (CSR row r, 32 samples), lane = sample.
template <typename scalar_t>
__global__ void __launch_bounds__(kThreads)
    backward_rows_kernel(const Args<scalar_t> a, scalar_t* grad_logits,
                         at::opmath_type<scalar_t>* logit_partial) {
  using T = at::opmath_type<scalar_t>;
  const int lane = threadIdx.x % 32;
  const int64_t chunks = (a.batch + 31) / 32;
  const int64_t item = int64_t(blockIdx.x) * kWarps + threadIdx.x / 32;
  if (item >= a.nodes * chunks) return;  // whole warps only
  const int64_t r = item / chunks, chunk = item % chunks;
  const int64_t b = chunk * 32 + lane;
  const bool active = b < a.batch;
  const int64_t edges = a.g.edges;
  const scalar_t* lg = a.logits + (a.per_sample && active ? b * edges : 0);
  const T* da = a.da + (active ? b : 0) * edges;
  const int64_t pass_stride = a.batch * edges;
  auto da_of = [&](int64_t k) {  // the passes' partials in pass order
    T sum = T(0);
    for (int64_t p = 0; p < a.passes; ++p) sum += da[p * pass_stride + k];
    return sum;
  };
  int64_t k0, k1;
  list_range(a.g.rowptr, r, edges, &k0, &k1);
  const RowSoftmax<T> sm = row_softmax<T>(lg, a.g, r);
  T row_dot = T(0);
  for (int64_t k = k0; k < k1; ++k) row_dot += sm.weight(T(lg[k])) * da_of(k);
  for (int64_t k = k0; k < k1; ++k) {
    const T de = active ? sm.weight(T(lg[k])) * (da_of(k) - row_dot) : T(0);
    if (a.per_sample) {
      if (active) grad_logits[b * edges + k] = scalar_t(de);
    } else {
      const T sum = warp_sum(de);
      if (lane == 0) logit_partial[chunk * edges + k] = sum;
    }
  }
}

// dst[c] = Σ_r src[r, c] for two matrices at once (blockIdx.y picks one): 32 columns per block,
// 8 row groups in order, then the 8 group sums in order.
template <typename scalar_t>
__global__ void __launch_bounds__(kThreads)
    column_sums_kernel(const at::opmath_type<scalar_t>* src0, int64_t rows0, int64_t cols0,
                       scalar_t* dst0, const at::opmath_type<scalar_t>* src1, int64_t rows1,
                       int64_t cols1, scalar_t* dst1) {
  using T = at::opmath_type<scalar_t>;
  __shared__ T sums[kWarps][32];
  const bool first = blockIdx.y == 0;
  const T* src = first ? src0 : src1;
  const int64_t rows = first ? rows0 : rows1, cols = first ? cols0 : cols1;
  const int64_t c = int64_t(blockIdx.x) * 32 + threadIdx.x % 32;
  const int group = threadIdx.x / 32;
  if (int64_t(blockIdx.x) * 32 >= cols) return;  // block-uniform
  T sum = T(0);
  if (c < cols)
    for (int64_t r = group; r < rows; r += kWarps) sum += src[r * cols + c];
  sums[group][threadIdx.x % 32] = sum;
  __syncthreads();
  if (group == 0 && c < cols) {
    T total = T(0);
#pragma unroll
    for (int g = 0; g < kWarps; ++g) total += sums[g][threadIdx.x % 32];
    (first ? dst0 : dst1)[c] = scalar_t(total);
  }
}

bool aligned(const void* p, size_t alignment) {
  return reinterpret_cast<std::uintptr_t>(p) % alignment == 0;
}

template <typename scalar_t>
Feat<scalar_t> feat_of(const at::Tensor& h) {
  return {h.const_data_ptr<scalar_t>(), h.stride(0), h.stride(1)};
}

// Vec4 accesses need every row start of every (B,N,F) tensor aligned.
template <typename scalar_t>
bool vectorizable(int64_t features, std::initializer_list<const at::Tensor*> tensors) {
  const size_t alignment = alignof(Vec4<scalar_t>);
  if (features % kVec != 0) return false;
  for (const at::Tensor* t : tensors)
    if (!aligned(t->const_data_ptr(), alignment) || t->stride(0) % kVec || t->stride(1) % kVec)
      return false;
  return true;
}

template <typename scalar_t>
Args<scalar_t> make_args(const AggregateProblem& p) {
  Args<scalar_t> a{};
  a.g = p.graph.view();
  a.batch = p.batch;
  a.nodes = p.nodes;
  a.features = p.features;
  a.units = p.batch * p.nodes;
  a.per_sample = p.per_sample;
  a.logits = p.logits.const_data_ptr<scalar_t>();
  a.h_self = feat_of<scalar_t>(p.h_self);
  a.h_neigh = feat_of<scalar_t>(p.h_neigh);
  return a;
}

// Chunks of 128 features per pass: registers for up to 512 features per lane group (256 in
// double, whose backward tables would pass the 48 KB of static shared memory); the scalar
// fallback (odd F, unaligned rows) keeps one.
template <typename scalar_t, typename F>
void with_chunks(int64_t features, bool vec, F&& launch) {
  using std::integral_constant;
  constexpr bool wide = sizeof(at::opmath_type<scalar_t>) > 4;
  if (!vec) return launch(integral_constant<int, 1>{}, std::false_type{});
  if (features <= kLanesSpan) return launch(integral_constant<int, 1>{}, std::true_type{});
  if (wide || features <= 2 * kLanesSpan)
    return launch(integral_constant<int, 2>{}, std::true_type{});
  if constexpr (!wide) launch(integral_constant<int, 4>{}, std::true_type{});
}

// Features one pass covers (see with_chunks).
template <typename scalar_t>
int64_t pass_features(int64_t features, bool vec) {
  int64_t width = 0;
  with_chunks<scalar_t>(features, vec,
                        [&](auto chunks, auto) { width = decltype(chunks)::value * kLanesSpan; });
  return width;
}

template <typename scalar_t>
void launch_forward(const AggregateProblem& p, bool transposed, const at::Tensor& out) {
  Args<scalar_t> a = make_args<scalar_t>(p);
  a.bias = p.bias.defined() ? p.bias.const_data_ptr<scalar_t>() : nullptr;
  a.out = out.mutable_data_ptr<scalar_t>();
  const bool vec = vectorizable<scalar_t>(p.features, {&p.h_self, &p.h_neigh, &out});
  if (a.units == 0 || p.features == 0) return;
  const int64_t blocks = (a.units + kWarps - 1) / kWarps;
  TORCH_CHECK(blocks <= INT32_MAX, "graph_relational_aggregate: B·N too large");
  const cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  with_chunks<scalar_t>(p.features, vec, [&](auto chunks, auto vec4) {
    forward_kernel<scalar_t, decltype(chunks)::value, decltype(vec4)::value>
        <<<static_cast<int>(blocks), kThreads, 0, stream>>>(a, !transposed);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
}

template <typename scalar_t>
void launch_backward(const at::Tensor& grad_out_in, const AggregateProblem& p, bool transposed,
                     const at::Tensor& grad_self, const at::Tensor& grad_neigh,
                     const at::Tensor& grad_logits, const at::Tensor& grad_bias) {
  using T = at::opmath_type<scalar_t>;
  const at::Tensor grad_out = unit_inner_stride(grad_out_in);
  Args<scalar_t> a = make_args<scalar_t>(p);
  const auto acc_options = p.h_self.options().dtype(c10::CppTypeToScalarType<T>::value);
  const int64_t edges = p.graph.edges;
  const bool with_bias = grad_bias.numel() > 0;
  if (a.units == 0 || p.features == 0) {  // no rows: zero gradients (the empty sums)
    grad_logits.zero_();
    grad_bias.zero_();
    return;
  }
  const int64_t node_blocks = std::min((a.units + kWarps - 1) / kWarps, kMaxNodeBlocks);
  const bool vec = vectorizable<scalar_t>(p.features,
                                          {&p.h_self, &p.h_neigh, &grad_out, &grad_self,
                                           &grad_neigh});
  const int64_t width = pass_features<scalar_t>(p.features, vec);
  a.passes = (p.features + width - 1) / width;
  // Zeros: an entry of an edge that a corrupt graph leaves out of its lists reads as 0.
  at::Tensor da = at::zeros({a.passes, p.batch, edges}, acc_options);
  at::Tensor bias_partial = at::empty({with_bias ? node_blocks : 0, p.features}, acc_options);
  a.grad_out = feat_of<scalar_t>(grad_out);
  a.grad_self = grad_self.mutable_data_ptr<scalar_t>();
  a.grad_neigh = grad_neigh.mutable_data_ptr<scalar_t>();
  a.da = da.mutable_data_ptr<T>();
  a.bias_partial = with_bias ? bias_partial.mutable_data_ptr<T>() : nullptr;
  const cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  with_chunks<scalar_t>(p.features, vec, [&](auto chunks, auto vec4) {
    backward_nodes_kernel<scalar_t, decltype(chunks)::value, decltype(vec4)::value>
        <<<static_cast<int>(node_blocks), kThreads, 0, stream>>>(a, transposed);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });

  const int64_t chunks = (p.batch + 31) / 32;
  at::Tensor logit_partial = at::empty({p.per_sample ? 0 : chunks, edges}, acc_options);
  const int64_t row_blocks = (p.nodes * chunks + kWarps - 1) / kWarps;
  backward_rows_kernel<scalar_t><<<static_cast<int>(row_blocks), kThreads, 0, stream>>>(
      a, grad_logits.mutable_data_ptr<scalar_t>(),
      p.per_sample ? nullptr : logit_partial.mutable_data_ptr<T>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();

  const int64_t bias_cols = with_bias ? p.features : 0;
  const int64_t logit_cols = p.per_sample ? 0 : edges;
  const int64_t col_blocks = (std::max(bias_cols, logit_cols) + 31) / 32;
  if (col_blocks > 0) {
    column_sums_kernel<scalar_t><<<dim3(static_cast<unsigned>(col_blocks), 2), kThreads, 0,
                                   stream>>>(
        bias_partial.const_data_ptr<T>(), node_blocks, bias_cols,
        grad_bias.mutable_data_ptr<scalar_t>(), logit_partial.const_data_ptr<T>(), chunks,
        logit_cols, grad_logits.mutable_data_ptr<scalar_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
}

at::Tensor aggregate_forward_cuda(const at::Tensor& h_self, const at::Tensor& h_neigh,
                                  const at::Tensor& logits, const std::optional<at::Tensor>& bias,
                                  const at::Tensor& rowptr, const at::Tensor& col,
                                  const at::Tensor& t_rowptr, const at::Tensor& t_col,
                                  const at::Tensor& perm, bool transposed) {
  // Checks first: they name the argument when a tensor is not on the features' device.
  const AggregateProblem p =
      prepare_aggregate(h_self, h_neigh, logits, bias, rowptr, col, t_rowptr, t_col, perm);
  const c10::cuda::CUDAGuard guard(h_self.device());
  at::Tensor out = at::empty({p.batch, p.nodes, p.features}, h_self.options());
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, h_self.scalar_type(),
                                  "graph_relational_aggregate_cuda",
                                  [&] { launch_forward<scalar_t>(p, transposed, out); });
  return out;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> aggregate_backward_cuda(
    const at::Tensor& grad_out, const at::Tensor& h_self, const at::Tensor& h_neigh,
    const at::Tensor& logits, const at::Tensor& rowptr, const at::Tensor& col,
    const at::Tensor& t_rowptr, const at::Tensor& t_col, const at::Tensor& perm,
    bool transposed, bool bias_grad) {
  const AggregateProblem p =
      prepare_aggregate(h_self, h_neigh, logits, std::nullopt, rowptr, col, t_rowptr, t_col,
                        perm);
  check_aggregate_grad(grad_out, h_self);
  const c10::cuda::CUDAGuard guard(h_self.device());
  auto [grad_self, grad_neigh, grad_logits, grad_bias] = allocate_aggregate_grads(p, bias_grad);
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, h_self.scalar_type(), "graph_relational_aggregate_backward_cuda",
      [&] {
        launch_backward<scalar_t>(grad_out, p, transposed, grad_self, grad_neigh, grad_logits,
                                  grad_bias);
      });
  return {grad_self, grad_neigh, grad_logits, grad_bias};
}

}  // namespace

TORCH_LIBRARY_IMPL(landmark_kernels, CUDA, m) {
  m.impl("graph_relational_aggregate", &aggregate_forward_cuda);
  m.impl("graph_relational_aggregate_backward", &aggregate_backward_cuda);
}

}  // namespace landmark_kernels
