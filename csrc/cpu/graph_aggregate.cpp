// Sparse graph-relational aggregation (SDFL, docs/graph.md) on the CPU, forward and backward.
//
// First the softmax weights a of every edge (per sample when the logits are): a tiny (B·)E pass.
// Forward, per (sample b, node o): out[b,o] = bias + Σ a·(self edge ? h_self[b,o] :
// h_neigh[b,other]) over o's gather list (row o of the CSR; column o of the transposed CSR for
// transposed=True). No dense N×N matrix exists.
// Backward, per (b, source node s), over the opposite list, so that every gradient is a gather
// and nothing needs atomics: grad_h_neigh[b,s] = Σ a·grad_out[b,o], grad_h_self[b,s] =
// a_ss·grad_out[b,s], and in the same pass the edge scores da = <grad_out[b,o], x_s>; then per
// row the softmax backward de = a·(da − Σ_row a·da), summed over b in a fixed order for shared
// logits; the bias gradient from fixed blocks of rows, added in a fixed order. The same bits for
// any thread count.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <tuple>
#include <vector>

#include "../graph_ops.h"
#include "isa.h"

namespace landmark_kernels {
namespace {

// Rows of a (B,N,F) tensor with unit stride along F: row (b, n) starts at b·sb + n·sn.
template <typename scalar_t>
struct Rows {
  const scalar_t* data;
  int64_t sb, sn;
  const scalar_t* operator()(int64_t b, int64_t n) const { return data + b * sb + n * sn; }
};

template <typename scalar_t>
Rows<scalar_t> rows_of(const at::Tensor& h) {
  return {h.const_data_ptr<scalar_t>(), h.stride(0), h.stride(1)};
}

template <typename scalar_t>
struct Args {
  using T = at::opmath_type<scalar_t>;
  CsrView g;
  int64_t batch, nodes, features;
  bool by_rows;     // the gather list is the CSR row (else the transposed-CSR column)
  bool per_sample;  // weights (B,E), else (E,)
  const T* weights;
  Rows<scalar_t> h_self, h_neigh, grad_out;
  const scalar_t* bias;
  scalar_t* out;         // forward
  scalar_t* grad_self;   // backward
  scalar_t* grad_neigh;
  T* da;                 // (B,E) ∂loss/∂a
  T* bias_partial;       // (blocks, F) or nullptr

  const T* weights_of(int64_t b) const { return weights + (per_sample ? b * g.edges : 0); }
};

template <typename T, typename scalar_t>
LK_ALWAYS_INLINE void axpy(T* acc, T a, const scalar_t* x, int64_t n) {
#pragma omp simd
  for (int64_t f = 0; f < n; ++f) acc[f] += a * T(x[f]);
}

template <typename scalar_t, typename T>
LK_ALWAYS_INLINE void store(scalar_t* dst, const T* src, int64_t n) {
#pragma omp simd
  for (int64_t f = 0; f < n; ++f) dst[f] = scalar_t(src[f]);
}

// acc += a·g and the dot <g, x> in one pass over g.
template <typename T, typename scalar_t>
LK_ALWAYS_INLINE T axpy_dot(T* acc, T a, const scalar_t* g, const scalar_t* x, int64_t n) {
  T sum = T(0);
#pragma omp simd reduction(+ : sum)
  for (int64_t f = 0; f < n; ++f) {
    const T gf = T(g[f]);
    acc[f] += a * gf;
    sum += gf * T(x[f]);
  }
  return sum;
}

template <typename scalar_t, typename T = at::opmath_type<scalar_t>>
LK_ALWAYS_INLINE void forward_units(const Args<scalar_t>& p, int64_t begin, int64_t end, T* acc) {
  const int64_t n = p.nodes, f_size = p.features;
  for (int64_t u = begin; u < end; ++u) {
    const int64_t b = u / n, o = u % n;
    const T* a = p.weights_of(b);
    for (int64_t f = 0; f < f_size; ++f) acc[f] = p.bias ? T(p.bias[f]) : T(0);
    int64_t t0, t1;
    list_range(p.by_rows ? p.g.rowptr : p.g.t_rowptr, o, p.g.edges, &t0, &t1);
    for (int64_t t = t0; t < t1; ++t) {
      const ListEntry e = list_entry(p.g, p.by_rows, t);
      if (!e.valid) continue;
      axpy(acc, a[e.edge], e.other == o ? p.h_self(b, o) : p.h_neigh(b, e.other), f_size);
    }
    store(p.out + u * f_size, acc, f_size);
  }
}

// Units (b, s) per block of the bias partial sums: fixed, so the order of the final sum does
// not depend on the thread count.
constexpr int64_t kBiasBlock = 64;

template <typename scalar_t, typename T = at::opmath_type<scalar_t>>
LK_ALWAYS_INLINE void backward_blocks(const Args<scalar_t>& p, int64_t block_begin, int64_t block_end,
                               T* acc_self, T* acc_neigh) {
  const int64_t n = p.nodes, f_size = p.features, edges = p.g.edges, units = p.batch * n;
  for (int64_t block = block_begin; block < block_end; ++block) {
    T* bias_acc = p.bias_partial ? p.bias_partial + block * f_size : nullptr;
    for (int64_t u = block * kBiasBlock; u < std::min(units, (block + 1) * kBiasBlock); ++u) {
      const int64_t b = u / n, s = u % n;
      const T* a = p.weights_of(b);
      std::fill(acc_self, acc_self + f_size, T(0));
      std::fill(acc_neigh, acc_neigh + f_size, T(0));
      int64_t t0, t1;
      list_range(p.by_rows ? p.g.rowptr : p.g.t_rowptr, s, edges, &t0, &t1);
      for (int64_t t = t0; t < t1; ++t) {
        const ListEntry e = list_entry(p.g, p.by_rows, t);
        if (!e.valid) continue;
        const bool self = e.other == s;
        p.da[b * edges + e.edge] =
            axpy_dot(self ? acc_self : acc_neigh, a[e.edge], p.grad_out(b, e.other),
                     self ? p.h_self(b, s) : p.h_neigh(b, s), f_size);
      }
      store(p.grad_self + u * f_size, acc_self, f_size);
      store(p.grad_neigh + u * f_size, acc_neigh, f_size);
      if (bias_acc) axpy(bias_acc, T(1), p.grad_out(b, s), f_size);
    }
  }
}

#if LK_HAS_AVX2_TARGET
template <typename scalar_t, typename T>
LK_TARGET_AVX2 void forward_units_avx2(const Args<scalar_t>& p, int64_t begin, int64_t end,
                                       T* acc) {
  forward_units(p, begin, end, acc);
}
template <typename scalar_t, typename T>
LK_TARGET_AVX2 void backward_blocks_avx2(const Args<scalar_t>& p, int64_t begin, int64_t end,
                                         T* acc_self, T* acc_neigh) {
  backward_blocks(p, begin, end, acc_self, acc_neigh);
}
#endif

// The softmax weight of every edge, per sample when the logits are (B,E) (docs/graph.md: exactly
// the
// softmax of the dense row with −9e15 off the mask).
template <typename scalar_t, typename T = at::opmath_type<scalar_t>>
std::vector<T> softmax_weights(const AggregateProblem& p, const CsrView& g) {
  const int64_t lists = p.per_sample ? p.batch : 1;
  std::vector<T> weights(lists * g.edges);
  const scalar_t* logits = p.logits.const_data_ptr<scalar_t>();
  at::parallel_for(0, lists * p.nodes, 256, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t l = i / p.nodes, r = i % p.nodes;
      const scalar_t* lg = logits + l * g.edges;
      const RowSoftmax<T> sm = row_softmax<T>(lg, g, r);
      int64_t k0, k1;
      list_range(g.rowptr, r, g.edges, &k0, &k1);
      for (int64_t k = k0; k < k1; ++k) weights[l * g.edges + k] = sm.weight(T(lg[k]));
    }
  });
  return weights;
}

// Work items per parallel chunk: about 16 K features each.
int64_t unit_grain(int64_t features) {
  return std::max<int64_t>(1, 16384 / std::max<int64_t>(features, 1));
}

template <typename scalar_t>
Args<scalar_t> make_args(const AggregateProblem& p, bool by_rows,
                         const std::vector<at::opmath_type<scalar_t>>& weights) {
  Args<scalar_t> a{};
  a.g = p.graph.view();
  a.batch = p.batch;
  a.nodes = p.nodes;
  a.features = p.features;
  a.by_rows = by_rows;
  a.per_sample = p.per_sample;
  a.weights = weights.data();
  a.h_self = rows_of<scalar_t>(p.h_self);
  a.h_neigh = rows_of<scalar_t>(p.h_neigh);
  return a;
}

template <typename scalar_t>
void forward_kernel(const AggregateProblem& p, bool transposed, const at::Tensor& out) {
  using T = at::opmath_type<scalar_t>;
  const std::vector<T> weights = softmax_weights<scalar_t>(p, p.graph.view());
  // Row orientation: node o gathers its own row; transposed: its column.
  Args<scalar_t> a = make_args<scalar_t>(p, !transposed, weights);
  a.bias = p.bias.defined() ? p.bias.const_data_ptr<scalar_t>() : nullptr;
  a.out = out.mutable_data_ptr<scalar_t>();
  at::parallel_for(0, p.batch * p.nodes, unit_grain(p.features), [&](int64_t begin, int64_t end) {
    std::vector<T> acc(p.features);
#if LK_HAS_AVX2_TARGET
    if (has_avx2()) return forward_units_avx2(a, begin, end, acc.data());
#endif
    forward_units(a, begin, end, acc.data());
  });
}

template <typename scalar_t>
void backward_kernel(const at::Tensor& grad_out_in, const AggregateProblem& p, bool transposed,
                     const at::Tensor& grad_self, const at::Tensor& grad_neigh,
                     const at::Tensor& grad_logits, const at::Tensor& grad_bias) {
  using T = at::opmath_type<scalar_t>;
  const CsrView g = p.graph.view();
  const std::vector<T> weights = softmax_weights<scalar_t>(p, g);
  const int64_t f_size = p.features, edges = g.edges, batch = p.batch;
  const int64_t blocks = (batch * p.nodes + kBiasBlock - 1) / kBiasBlock;
  const bool with_bias = grad_bias.numel() > 0;
  std::vector<T> da(batch * edges, T(0));
  std::vector<T> bias_partial(with_bias ? blocks * f_size : 0, T(0));
  const at::Tensor grad_out = unit_inner_stride(grad_out_in);

  // The opposite list of the forward's: source node s scatters nowhere, it gathers.
  Args<scalar_t> a = make_args<scalar_t>(p, transposed, weights);
  a.grad_out = rows_of<scalar_t>(grad_out);
  a.grad_self = grad_self.mutable_data_ptr<scalar_t>();
  a.grad_neigh = grad_neigh.mutable_data_ptr<scalar_t>();
  a.da = da.data();
  a.bias_partial = with_bias ? bias_partial.data() : nullptr;
  const int64_t block_grain = std::max<int64_t>(1, unit_grain(f_size) / kBiasBlock);
  at::parallel_for(0, blocks, block_grain, [&](int64_t begin, int64_t end) {
    std::vector<T> acc(2 * f_size);
#if LK_HAS_AVX2_TARGET
    if (has_avx2()) return backward_blocks_avx2(a, begin, end, acc.data(), acc.data() + f_size);
#endif
    backward_blocks(a, begin, end, acc.data(), acc.data() + f_size);
  });

  // Softmax backward per row r: de = a·(da − Σ_row a·da); parallel over rows, samples in order.
  scalar_t* gl_data = grad_logits.mutable_data_ptr<scalar_t>();
  at::parallel_for(0, p.nodes, 8, [&](int64_t r_begin, int64_t r_end) {
    std::vector<T> de;
    for (int64_t r = r_begin; r < r_end; ++r) {
      int64_t k0, k1;
      list_range(g.rowptr, r, edges, &k0, &k1);
      de.assign(k1 - k0, T(0));
      for (int64_t b = 0; b < batch; ++b) {
        const T* w = a.weights_of(b);
        const T* da_b = da.data() + b * edges;
        T row_dot = T(0);
        for (int64_t k = k0; k < k1; ++k) row_dot += w[k] * da_b[k];
        for (int64_t k = k0; k < k1; ++k) {
          const T d = w[k] * (da_b[k] - row_dot);
          if (p.per_sample) {
            gl_data[b * edges + k] = scalar_t(d);
          } else {
            de[k - k0] += d;
          }
        }
      }
      if (!p.per_sample) store(gl_data + k0, de.data(), k1 - k0);
    }
  });

  if (with_bias) {
    std::vector<T> total(f_size, T(0));
    for (int64_t block = 0; block < blocks; ++block)
      axpy(total.data(), T(1), bias_partial.data() + block * f_size, f_size);
    store(grad_bias.mutable_data_ptr<scalar_t>(), total.data(), f_size);
  }
}

at::Tensor aggregate_forward_cpu(const at::Tensor& h_self, const at::Tensor& h_neigh,
                                 const at::Tensor& logits, const std::optional<at::Tensor>& bias,
                                 const at::Tensor& rowptr, const at::Tensor& col,
                                 const at::Tensor& t_rowptr, const at::Tensor& t_col,
                                 const at::Tensor& perm, bool transposed) {
  const AggregateProblem p =
      prepare_aggregate(h_self, h_neigh, logits, bias, rowptr, col, t_rowptr, t_col, perm);
  at::Tensor out = at::empty({p.batch, p.nodes, p.features}, h_self.options());
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, h_self.scalar_type(),
                                  "graph_relational_aggregate_cpu",
                                  [&] { forward_kernel<scalar_t>(p, transposed, out); });
  return out;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> aggregate_backward_cpu(
    const at::Tensor& grad_out, const at::Tensor& h_self, const at::Tensor& h_neigh,
    const at::Tensor& logits, const at::Tensor& rowptr, const at::Tensor& col,
    const at::Tensor& t_rowptr, const at::Tensor& t_col, const at::Tensor& perm,
    bool transposed, bool bias_grad) {
  const AggregateProblem p =
      prepare_aggregate(h_self, h_neigh, logits, std::nullopt, rowptr, col, t_rowptr, t_col,
                        perm);
  check_aggregate_grad(grad_out, h_self);
  auto [grad_self, grad_neigh, grad_logits, grad_bias] = allocate_aggregate_grads(p, bias_grad);
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, h_self.scalar_type(), "graph_relational_aggregate_backward_cpu",
      [&] {
        backward_kernel<scalar_t>(grad_out, p, transposed, grad_self, grad_neigh, grad_logits,
                                  grad_bias);
      });
  return {grad_self, grad_neigh, grad_logits, grad_bias};
}

}  // namespace

TORCH_LIBRARY_IMPL(landmark_kernels, CPU, m) {
  m.impl("graph_relational_aggregate", &aggregate_forward_cpu);
  m.impl("graph_relational_aggregate_backward", &aggregate_backward_cpu);
}

}  // namespace landmark_kernels
